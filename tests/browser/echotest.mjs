// Drives the echo-test demo page (demos/index.html) in Debian's headless
// Chromium through playwright-core, the way a person would: Start, watch the
// echoed video, read the stats, send a data-channel message, stop and resume
// the video, take a screenshot, hang up.
//
//   node echotest.mjs --url URL [--screenshot FILE] [--expect-prefix TEXT]
//
// Every check that fails is reported; the last line on stdout is a JSON
// summary {"ok": bool, "checks": [...], ...}. Exit status 0 only when every
// check passed. Run it with the server in the same private network namespace
// (see netns-run.sh): Chromium only uses a loopback ICE address when it has
// no other interface.

import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    screenshot: { type: "string" },
    "expect-prefix": { type: "string", default: "" },
    chromium: { type: "string", default: process.env.CHROMIUM_BIN || "/usr/bin/chromium" },
    timeout: { type: "string", default: "20000" },
  },
});
if (!args.url) {
  console.error("usage: node echotest.mjs --url URL [--screenshot FILE] [--expect-prefix TEXT]");
  process.exit(2);
}
const TIMEOUT = Number(args.timeout);

const checks = [];
function check(name, ok, detail) {
  checks.push({ name, ok: Boolean(ok), detail });
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail === undefined ? "" : " — " + JSON.stringify(detail)}`);
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const profile = mkdtempSync(join(tmpdir(), "jsfu-chromium-"));
const console_lines = [];
let browser = null;
let context = null;
let fatal = null;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium,
    headless: true,
    viewport: { width: 1280, height: 960 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  browser = context;
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => console_lines.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console_lines.push(`[pageerror] ${e.message}`));

  await page.goto(args.url);
  await page.waitForFunction(() => window.demo && window.demo.ready, null, { timeout: TIMEOUT });
  check("janus.js initialised", true);

  // --- start: webrtcup and the echoed video ---------------------------------
  await page.click("#start");
  const up = await page
    .waitForFunction(() => window.demo.webrtcUp || window.demo.errors.length > 0, null, { timeout: TIMEOUT })
    .then(() => page.evaluate(() => window.demo.webrtcUp))
    .catch(() => false);
  if (!check("webrtcup", up, await page.evaluate(() => ({ errors: window.demo.errors, events: window.demo.events })))) {
    throw new Error("no PeerConnection");
  }

  const playing = await page
    .waitForFunction(
      () => {
        const v = document.getElementById("remote");
        return v.videoWidth > 0 && !v.paused && v.currentTime > 0;
      },
      null,
      { timeout: TIMEOUT },
    )
    .then(() => true)
    .catch(() => false);
  const size = await page.evaluate(() => {
    const v = document.getElementById("remote");
    return { videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime };
  });
  check("echoed video plays with videoWidth > 0", playing, size);

  // --- getStats: inbound audio and video packets increase ---------------------
  const stats = () => page.evaluate(() => window.demo.stats);
  await page.waitForFunction(() => window.demo.stats !== null, null, { timeout: TIMEOUT });
  const s0 = await stats();
  await sleep(2500);
  const s1 = await stats();
  check("inbound audio packets increase", s1.audioIn.packets > s0.audioIn.packets, [s0.audioIn.packets, s1.audioIn.packets]);
  check("inbound video packets increase", s1.videoIn.packets > s0.videoIn.packets, [s0.videoIn.packets, s1.videoIn.packets]);
  check("stats table shows the inbound bitrate", (await page.textContent("#video-in-kbps")) !== "–");

  // --- the data-channel echo ---------------------------------------------------
  const dataOpen = await page
    .waitForFunction(() => window.demo.dataOpen, null, { timeout: TIMEOUT })
    .then(() => true)
    .catch(() => false);
  check("data channel open", dataOpen);
  if (dataOpen) {
    const text = "hello from chromium";
    let echoed = null;
    // Janus drops messages that arrive before it marks the channel ready: retry.
    for (let attempt = 0; attempt < 5 && echoed === null; attempt++) {
      await page.fill("#data-text", text);
      await page.click("#data-send");
      echoed = await page
        .waitForFunction((t) => window.demo.dataReplies.find((r) => r.endsWith(t)) || null, text, { timeout: 2000 })
        .then((h) => h.jsonValue())
        .catch(() => null);
    }
    check("data-channel echo arrives", echoed !== null && echoed.startsWith(args["expect-prefix"]), echoed);
  }

  // --- video off, then on again ---------------------------------------------------
  await page.click("#toggle-video");
  await page.waitForFunction(() => window.demo.videoOn === false, null, { timeout: TIMEOUT });
  await sleep(1500);
  const off0 = await stats();
  await sleep(2000);
  const off1 = await stats();
  const offDelta = off1.videoIn.packets - off0.videoIn.packets;
  check("video off: no video comes back", offDelta <= 3, { packets: offDelta });
  check("video off: audio still comes back", off1.audioIn.packets > off0.audioIn.packets, [off0.audioIn.packets, off1.audioIn.packets]);
  await page.click("#toggle-video");
  await page.waitForFunction(() => window.demo.videoOn === true, null, { timeout: TIMEOUT });
  const on0 = await stats();
  const resumed = await page
    .waitForFunction(
      (p) => window.demo.stats.videoIn.packets > p.packets + 20 && window.demo.stats.videoIn.framesDecoded > p.frames,
      { packets: on0.videoIn.packets, frames: on0.videoIn.framesDecoded },
      { timeout: TIMEOUT },
    )
    .then(() => true)
    .catch(() => false);
  const on1 = await stats();
  check("video on: echoed video resumes", resumed, {
    packets: [on0.videoIn.packets, on1.videoIn.packets],
    framesDecoded: [on0.videoIn.framesDecoded, on1.videoIn.framesDecoded],
  });

  // --- bitrate and substream requests are accepted --------------------------------
  await page.selectOption("#bitrate", "512000");
  await page.click('.substream[data-substream="2"]');
  await sleep(500);

  // --- screenshot while the call is up -------------------------------------------
  if (args.screenshot) {
    mkdirSync(dirname(args.screenshot), { recursive: true });
    await sleep(1000);
    await page.screenshot({ path: args.screenshot, fullPage: true });
    console.log(`screenshot: ${args.screenshot}`);
  }

  // --- hangup ----------------------------------------------------------------------
  await page.click("#hangup");
  const clean = await page
    .waitForFunction(() => window.demo.cleanups > 0 && window.demo.events.includes("hung up"), null, { timeout: TIMEOUT })
    .then(() => true)
    .catch(() => false);
  const end = await page.evaluate(() => ({
    cleanups: window.demo.cleanups,
    status: window.demo.status,
    errors: window.demo.errors,
    webrtcUp: window.demo.webrtcUp,
  }));
  check("hangup is clean", clean && end.errors.length === 0 && !end.webrtcUp && end.status === "idle", end);
} catch (e) {
  fatal = String(e && e.stack ? e.stack : e);
  check("no exception", false, fatal);
} finally {
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

const ok = checks.length > 0 && checks.every((c) => c.ok);
if (!ok) {
  console.log("--- page console ---");
  for (const line of console_lines.slice(-80)) console.log(line);
}
console.log(JSON.stringify({ ok, checks }));
process.exit(ok ? 0 : 1);
