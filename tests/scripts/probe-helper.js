// Helper module for contract-probe.js (loaded through Duktape.modSearch).
probeHelperLoads = (typeof probeHelperLoads === "number" ? probeHelperLoads : 0) + 1;
exports.value = "helper";
exports.moduleId = module.id;
exports.requireId = require.id;
exports.thisIsExports = this === exports;
exports.loads = function () {
	return probeHelperLoads;
};
