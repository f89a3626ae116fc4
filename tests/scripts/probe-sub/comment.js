// The last line is a comment without a newline.
exports.ok = true;
// final comment