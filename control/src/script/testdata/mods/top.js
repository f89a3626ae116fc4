// A top-level module required relatively from a/b.
exports.name = 'top';
exports.count = (exports.count || 0) + 1;
