// A module whose evaluation throws: it must not stay in Duktape.modLoaded.
exports.partial = true;
throw new Error("probe module throws");
