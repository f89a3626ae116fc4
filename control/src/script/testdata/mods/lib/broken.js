// Throws while loading: its modLoaded entry must be removed.
exports.partial = true;
throw new Error('broken module');
