// Replaces module.exports, as janus-sdp.js does; ends with a line comment
module.exports = { name: 'c' };
// no newline at the end of this comment
// the last line is a comment without a newline