// Drives Debian's stock VideoRoom demo page (janus-demos:
// /usr/share/janus/demos/videoroomtest.html, unchanged) in headless
// Chromium with fake devices, three participants at once: each clicks
// Start, registers a name and joins room 1234; each must then play the two
// others' video (videoWidth > 0, decoded frames increasing); then one
// leaves (Stop) and the two others must drop its video.
//
//   node demo_videoroom.mjs --url http://127.0.0.1:8088/videoroomtest.html
//
// The page's settings.js talks to http://<host>:8088/janus, so the server
// must listen there. Run it in a private network namespace
// (tests/browser/netns-run.sh): Chromium only uses a loopback ICE address
// when it has no other interface. Progress goes to stderr; stdout gets one
// JSON summary {"ok": bool, "checks": {name: {"ok", "detail"}}, "failures"}.

import { parseArgs } from "node:util";
import { chromium } from "../browser/node_modules/playwright-core/index.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM_BIN || "/usr/bin/chromium" },
    "declare-globals": { type: "boolean", default: false },
  },
});
if (!args.url) {
  console.error("usage: node demo_videoroom.mjs --url URL");
  process.exit(2);
}

const checks = {};
const failures = [];
function check(name, ok, detail) {
  checks[name] = { ok: Boolean(ok), detail: detail === undefined ? null : detail };
  if (!ok) failures.push(`${name}: ${JSON.stringify(detail)}`);
  console.error(`${ok ? "ok  " : "FAIL"} ${name} ${JSON.stringify(detail === undefined ? "" : detail)}`);
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Remote videos of a page: [{id, width, frames}]. */
async function remoteVideos(page) {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll("video[id^=remotevideo]")).map((v) => ({
      id: v.id,
      width: v.videoWidth,
      frames: v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0,
    })),
  );
}

let browser = null;
const logs = [];
try {
  browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
  const names = ["alice", "bob", "carol"];
  const pages = [];
  for (const name of names) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => logs.push(`[${name} pageerror] ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") logs.push(`[${name}] ${m.text()}`);
    });
    // Debian's settings.js does not declare the `token` and `apisecret`
    // globals the demo scripts read (upstream's does). jsfu's demo server
    // declares them itself; a plain static server does not, so with
    // --declare-globals they are declared empty before the page's scripts
    // run, as upstream's settings.js would.
    if (args["declare-globals"]) {
      await page.addInitScript(() => {
        window.token = null;
        window.apisecret = null;
      });
    }
    await page.goto(args.url);
    await page.click("#start");
    await page.waitForSelector("#username", { state: "visible", timeout: 20000 });
    await page.fill("#username", name);
    await page.click("#register");
    await page.waitForSelector("#videolocal video", { timeout: 20000 });
    pages.push(page);
    check(`${name}_joined`, true);
  }

  // Everybody sees the two others' video playing.
  const deadline = Date.now() + 30000;
  let views = [];
  for (;;) {
    views = await Promise.all(pages.map(remoteVideos));
    const good = views.every((v) => v.filter((x) => x.width > 0 && x.frames > 0).length >= 2);
    if (good || Date.now() > deadline) break;
    await sleep(500);
  }
  await sleep(2000);
  const later = await Promise.all(pages.map(remoteVideos));
  names.forEach((name, i) => {
    const before = views[i].filter((x) => x.width > 0);
    const after = later[i].filter((x) => x.width > 0);
    const rising = after.filter((a) => {
      const b = before.find((x) => x.id === a.id);
      return b && a.frames > b.frames;
    });
    check(`${name}_sees_two_videos_playing`, after.length >= 2 && rising.length >= 2, { before: views[i], after: later[i] });
  });

  // Carol leaves: the others drop her video.
  await pages[2].click("#start");
  const gone = Date.now() + 15000;
  let remaining = [];
  for (;;) {
    remaining = await Promise.all(pages.slice(0, 2).map(remoteVideos));
    if (remaining.every((v) => v.length === 1) || Date.now() > gone) break;
    await sleep(500);
  }
  check("carol_left_others_drop_her_video", remaining.every((v) => v.length === 1), remaining);
  // The two others stop too; no error dialog may be in the way.
  for (const [i, page] of pages.slice(0, 2).entries()) {
    const stopped = await page.click("#start", { timeout: 5000 }).then(() => true, (e) => String(e).split("\n")[0]);
    check(`${names[i]}_stops_cleanly`, stopped === true, stopped);
    await sleep(1000);
  }
} catch (e) {
  check("no_exception", false, String(e && e.stack ? e.stack : e));
} finally {
  if (browser) await browser.close();
}
const ok = failures.length === 0;
if (!ok) console.error(logs.slice(-40).join("\n"));
process.stdout.write(JSON.stringify({ ok, checks, failures }) + "\n");
process.exit(ok ? 0 : 1);
