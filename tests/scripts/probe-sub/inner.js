// Nested module for contract-probe.js: relative requires resolve against
// this module's id ("probe-sub/inner").
var parent = require("../probe-helper");
var sibling = require("./sibling");
exports.id = module.id;
exports.requireId = require.id;
exports.parent = parent;
exports.sibling = sibling.name;
exports.replaced = sibling.replaced === true;
