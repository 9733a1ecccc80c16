// Plays sluice's LL-HLS in headless Chromium with the hls.js the server vendors, and measures the
// live latency a viewer gets. Run by tests/hls_browser.rs.
//
// 1. A player page on another origin (a node http server on loopback, as a site embedding the
//    stream would be) loads /console/vendor/hls.min.js from sluice and plays
//    /{stream}/index.m3u8 with `lowLatencyMode: true` (and `maxLiveSyncPlaybackRate: 1.5`). Checks: currentTime advances with the
//    wall clock, videoWidth is the stream's, no fatal hls.js error, the playlist is LL-HLS
//    (parts, blocking reload) and hls.js fetched parts and made blocking reloads. Then samples
//    for SLUICE_SAMPLE_MS: hls.latency (behind the playlist's live edge) and the wall-clock
//    latency (Date.now() minus hls.playingDate, the PROGRAM-DATE-TIME of the frame on screen;
//    the server stamps it with when the frame arrived, so this is ingest to display on one
//    machine's clock). Prints p50/p95/max as a `latency {...}` line and fails above
//    SLUICE_MAX_LATENCY seconds.
// 2. Unless SLUICE_CONSOLE is 0: the console's preview over LL-HLS (choose it, click Preview)
//    plays and shows a latency figure.
//
// Env: SLUICE_URL, SLUICE_STREAM, SLUICE_WIDTH, SLUICE_CODECS (the MIME type MSE must take, e.g.
// `video/mp4; codecs="avc1.42c01e"`; if Chromium says no, prints `unsupported: ...` and exits
// 4), SLUICE_MAX_LATENCY, SLUICE_SAMPLE_MS, SLUICE_CONSOLE, SLUICE_ARTIFACTS, SLUICE_CHROMIUM,
// SLUICE_NODE_PATH (where scripts/setup-test-tools.sh put playwright-core).
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name, dflt) => {
  const v = process.env[name] ?? dflt;
  if (v === undefined || v === '') { console.error(`hls.mjs: ${name} is not set`); process.exit(2); }
  return v;
};
const base = env('SLUICE_URL');
const key = env('SLUICE_STREAM');
const width = Number(env('SLUICE_WIDTH'));
const mime = env('SLUICE_CODECS');
const maxLatency = Number(env('SLUICE_MAX_LATENCY'));
const sampleMs = Number(env('SLUICE_SAMPLE_MS', '10000'));
const withConsole = env('SLUICE_CONSOLE', '1') !== '0';
const artifacts = env('SLUICE_ARTIFACTS');
const tag = key.replace(/\W/g, '-');
const require = createRequire(join(env('SLUICE_NODE_PATH'), 'noop.js'));
const { chromium } = require('playwright-core');

// Never hang: the Rust test has its own timeout too.
const watchdog = setTimeout(() => { console.error('hls.mjs: timed out'); process.exit(3); }, 75_000);

// The player page, served from its own origin: sluice answers it with CORS like any site's.
const playlist = `${base}/${key}/index.m3u8`;
const playerHtml = `<!doctype html><meta charset="utf-8"><title>LL-HLS player</title><link rel="icon" href="data:,">
<video id="v" muted autoplay playsinline width="640"></video>
<script src="${base}/console/vendor/hls.min.js"></script>
<script>
'use strict';
window.report = { fatal: [], errors: [], waiting: 0, details: null, level: null, first: null, firstFrag: null };
const v = document.getElementById('v');
// As a low-latency site would set it up: hls.js may play up to 1.5x to get back to its target
// after a stall, rather than keep every stall's delay for the rest of the session.
const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5, liveSyncDuration: 1, liveMaxLatencyDuration: 4 });
window.hls = hls;
hls.on(Hls.Events.ERROR, (_, d) => {
  const what = d.type + ' ' + d.details + (d.reason ? ' ' + d.reason : '') + (d.error ? ' ' + d.error.message : '');
  (d.fatal ? report.fatal : report.errors).push(what);
});
hls.on(Hls.Events.LEVEL_LOADED, (_, d) => {
  const x = d.details;
  // Where the first playlist put the live edge, to explain a start far from it.
  if (!report.first) report.first = { url: d.url, segments: x.fragments.length, parts: (x.partList || []).length,
    start: x.fragments.length ? x.fragments[0].start : null, edge: x.edge, liveSync: hls.liveSyncPosition };
  report.details = { live: x.live, partTarget: x.partTarget, parts: (x.partList || []).length,
    canBlockReload: x.canBlockReload, canSkipUntil: x.canSkipUntil, partHoldBack: x.partHoldBack,
    targetduration: x.targetduration, skipped: x.skippedSegments || 0 };
});
hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => {
  const l = d.levels[0];
  report.level = l && { width: l.width, height: l.height, videoCodec: l.videoCodec, audioCodec: l.audioCodec };
  v.play().catch((e) => report.errors.push('play: ' + e.message));
});
hls.on(Hls.Events.FRAG_LOADING, (_, d) => {
  if (!report.firstFrag) report.firstFrag = { sn: d.frag.sn, start: d.frag.start, part: d.part ? d.part.index : null,
    url: d.part ? d.part.url : d.frag.url, currentTime: v.currentTime, liveSync: hls.liveSyncPosition };
});
v.addEventListener('waiting', () => { if (v.currentTime > 0) report.waiting++; });
hls.loadSource(${JSON.stringify(playlist)});
hls.attachMedia(v);
</script>`;
const site = createServer((req, res) => {
  res.writeHead(req.url === '/player.html' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(req.url === '/player.html' ? playerHtml : 'not found');
});
await new Promise((ok) => site.listen(0, '127.0.0.1', ok));
const siteUrl = `http://127.0.0.1:${site.address().port}`;

const quantile = (xs, q) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const summary = (xs) => ({ n: xs.length, p50: quantile(xs, 0.5), p95: quantile(xs, 0.95), max: xs.length ? Math.max(...xs) : null });
const round = (o) => JSON.stringify(o, (_, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v));

mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
let context;
let failed = null;
let unsupported = false;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: env('SLUICE_CHROMIUM'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required'],
    viewport: { width: 1280, height: 1100 },
  });
  const page = context.pages()[0] || await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));

  await page.goto(`${siteUrl}/player.html`, { waitUntil: 'load' });
  const ok = await page.evaluate((m) => MediaSource.isTypeSupported(m), mime);
  console.log(`MediaSource.isTypeSupported('${mime}') = ${ok}`);
  if (!ok) {
    unsupported = true;
    throw new Error(`unsupported: this Chromium's MSE does not take ${mime}`);
  }

  const state = () => page.evaluate(() => {
    const v = document.getElementById('v');
    const d = hls.playingDate;
    return { t: v.currentTime, w: v.videoWidth, h: v.videoHeight, paused: v.paused,
      err: v.error && v.error.message, latency: hls.latency, target: hls.targetLatency,
      wall: d ? (Date.now() - d.getTime()) / 1000 : null, fatal: report.fatal };
  });
  // Playing: past the first second, at the stream's size.
  let s = await state();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !(s.t > 1 && s.w > 0) && !s.fatal.length) {
    await page.waitForTimeout(100);
    s = await state();
  }
  console.log('first', round(s));
  if (s.fatal.length) throw new Error(`fatal hls.js error: ${s.fatal.join('; ')}`);
  if (!(s.t > 1)) throw new Error(`LL-HLS does not play: ${round(s)}`);

  // Sample the latency while it plays.
  const latency = [];
  const wall = [];
  const t0 = s.t;
  const start = Date.now();
  while (Date.now() - start < sampleMs) {
    await page.waitForTimeout(250);
    s = await state();
    if (s.latency > 0) latency.push(s.latency);
    if (s.wall !== null) wall.push(s.wall);
  }
  const elapsed = (Date.now() - start) / 1000;
  const advanced = s.t - t0;
  const report = await page.evaluate(() => report);
  const partReqs = requests.filter((u) => /\/part[^/]*\.m4s/.test(u)).length;
  const blockingReqs = requests.filter((u) => /index\.m3u8\?.*_HLS_msn=/.test(u)).length;
  const skipReqs = requests.filter((u) => /_HLS_skip=/.test(u)).length;
  const result = {
    first_playlist: report.first, first_load: report.firstFrag,
    elapsed, advanced, width: s.w, height: s.h, level: report.level, playlist: report.details,
    requests: { parts: partReqs, blocking_reloads: blockingReqs, delta_updates: skipReqs, total: requests.length },
    stalls: report.waiting, nonfatal_errors: report.errors,
    hls_latency: summary(latency), wall_latency: summary(wall), target: s.target,
  };
  console.log('latency', round(result));

  if (report.fatal.length) throw new Error(`fatal hls.js error: ${report.fatal.join('; ')}`);
  if (s.err) throw new Error(`<video> error: ${s.err}`);
  if (s.w !== width) throw new Error(`videoWidth ${s.w}, expected ${width}`);
  // Real time, not a stutter: the playhead keeps up with the wall clock (a stall of more than
  // a second would fail this).
  if (!(advanced >= 5 && advanced >= elapsed - 1)) throw new Error(`currentTime advanced ${advanced} s in ${elapsed} s`);
  const d = report.details;
  if (!d || !d.live || !(d.partTarget > 0) || !d.parts || !d.canBlockReload) throw new Error(`not an LL-HLS playlist: ${round(d)}`);
  if (!partReqs) throw new Error('hls.js fetched no parts: it did not play low-latency');
  if (!blockingReqs) throw new Error('hls.js made no blocking playlist reloads');
  if (latency.length < sampleMs / 500 || wall.length < sampleMs / 500) throw new Error(`too few latency samples: ${latency.length}, ${wall.length}`);
  // The median over the sampled seconds: a player that joins far behind seeks to the live edge
  // (liveMaxLatencyDuration) within the window, and its first samples say so in the max.
  const typical = Math.max(result.hls_latency.p50, result.wall_latency.p50);
  if (!(typical < maxLatency)) throw new Error(`live latency p50 ${typical} s, over ${maxLatency} s`);
  if (!(result.wall_latency.p50 > 0)) throw new Error(`wall-clock latency ${result.wall_latency.p50} s: PROGRAM-DATE-TIME is in the future`);
  await page.screenshot({ path: join(artifacts, `hls-${tag}.png`) });

  if (withConsole) {
    // The console's preview, switched to LL-HLS.
    const con = await context.newPage();
    const conRequests = [];
    con.on('request', (r) => conRequests.push(r.url()));
    con.on('pageerror', (e) => console.log(`[console error] ${e.message}`));
    await con.goto(`${base}/console/`, { waitUntil: 'load' });
    await con.selectOption('#preview-via', 'hls');
    const preview = con.locator(`button[data-preview="${key}"]`);
    await preview.waitFor({ timeout: 15_000 });
    await preview.click();
    const cstate = () => con.evaluate(() => {
      const v = document.querySelector('#preview');
      return { t: v.currentTime, w: v.videoWidth, err: v.error && v.error.message,
        via: document.querySelector('#player-via').textContent,
        latency: document.querySelector('#player-latency').textContent,
        wall: document.querySelector('#player-wall').textContent,
        status: document.querySelector('#player-status').textContent };
    });
    let c = await cstate();
    const cdeadline = Date.now() + 20_000;
    while (Date.now() < cdeadline && !(c.t > 1 && c.w > 0 && /\d s$/.test(c.latency) && /\d s$/.test(c.wall))) {
      await con.waitForTimeout(250);
      c = await cstate();
    }
    console.log('console first', JSON.stringify(c));
    if (!(c.t > 1)) throw new Error(`the console's HLS preview does not play: ${JSON.stringify(c)}`);
    const ct = c.t;
    await con.waitForTimeout(2000);
    c = await cstate();
    console.log('console after 2 s', JSON.stringify(c));
    if (!(c.t > ct + 1)) throw new Error(`the console's HLS preview: currentTime ${ct} -> ${c.t}`);
    if (c.w !== width) throw new Error(`the console's HLS preview: videoWidth ${c.w}, expected ${width}`);
    if (!/hls\.js/.test(c.via)) throw new Error(`the console previews over ${c.via}`);
    if (!c.status.startsWith(`${width}×`)) throw new Error(`the console's status line: ${c.status}`);
    if (!/\d s$/.test(c.latency) || !/\d s$/.test(c.wall)) throw new Error(`the console shows no latency: ${JSON.stringify(c)}`);
    if (!conRequests.some((u) => u.startsWith(`${base}/${key}/index.m3u8`))) throw new Error('the console did not fetch the LL-HLS playlist');
    await con.screenshot({ path: join(artifacts, `console-hls-${tag}.png`), fullPage: true });
    const foreign = conRequests.filter((u) => !u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:'));
    if (foreign.length) throw new Error(`the console fetched from elsewhere: ${foreign.join(', ')}`);
  }
  console.log('hls.mjs: ok');
} catch (e) {
  failed = e;
  try {
    for (const [i, p] of (context ? context.pages() : []).entries()) {
      await p.screenshot({ path: join(artifacts, `hls-${tag}-failed-${i}.png`), fullPage: true });
    }
  } catch {}
} finally {
  if (context) await context.close().catch(() => {});
  site.close();
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
}
if (unsupported) {
  console.log(`hls.mjs: ${failed.message}`);
  process.exit(4);
}
if (failed) {
  console.error('hls.mjs: FAILED:', failed.message);
  process.exit(1);
}
