// Requires a sibling and a parent-level module; replaces nothing.
var c = require('./c');
var top = require('../top');
exports.sibling = c.name;
exports.top = top.name;
exports.requireId = require.id;
exports.moduleId = module.id;
exports.thisIsExports = (this === exports);
