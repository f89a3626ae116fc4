// Replaces module.exports, as janus-sdp.js does.
module.exports = { name: "sibling:" + module.id, replaced: true };
