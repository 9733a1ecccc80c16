// Drives the web console in headless Chromium: opens /console/, starts the preview of a stream,
// and checks that the <video> really plays (currentTime advances, videoWidth is the stream's).
// Run by tests/console.rs; needs SLUICE_URL, SLUICE_STREAM, SLUICE_WIDTH, SLUICE_ARTIFACTS,
// SLUICE_CHROMIUM and SLUICE_NODE_PATH (where scripts/setup-test-tools.sh put playwright-core).
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) { console.error(`console.mjs: ${name} is not set`); process.exit(2); }
  return v;
};
const base = env('SLUICE_URL');
const key = env('SLUICE_STREAM');
const width = Number(env('SLUICE_WIDTH'));
const artifacts = env('SLUICE_ARTIFACTS');
const require = createRequire(join(env('SLUICE_NODE_PATH'), 'noop.js'));
const { chromium } = require('playwright-core');

// Never hang: the Rust test has its own timeout too.
const watchdog = setTimeout(() => { console.error('console.mjs: timed out'); process.exit(3); }, 60_000);

mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
let context;
let failed = null;
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
  const external = [];
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) external.push(r.url()); });
  page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));

  await page.goto(`${base}/console/`, { waitUntil: 'load' });
  const preview = page.locator(`button[data-preview="${key}"]`);
  await preview.waitFor({ timeout: 15_000 });
  await preview.click();

  const state = () => page.evaluate(() => {
    const v = document.querySelector('#preview');
    return { t: v.currentTime, w: v.videoWidth, h: v.videoHeight, paused: v.paused, err: v.error && v.error.message,
      status: document.querySelector('#player-status').textContent };
  });
  // Playing: currentTime moves past 1 s with the stream's width.
  let s = await state();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !(s.t > 1 && s.w > 0)) {
    await page.waitForTimeout(250);
    s = await state();
  }
  console.log('first', JSON.stringify(s));
  if (!(s.t > 1)) throw new Error(`the preview does not play: ${JSON.stringify(s)}`);
  const t1 = s.t;
  await page.waitForTimeout(2000);
  s = await state();
  console.log('after 2 s', JSON.stringify(s));
  if (!(s.t > t1 + 1)) throw new Error(`currentTime does not advance: ${t1} -> ${s.t}`);
  if (s.w !== width) throw new Error(`videoWidth ${s.w}, expected ${width}`);

  // The preview shows up as an http-flv viewer in the clients table, and the charts have a legend.
  await page.locator('#clients tbody tr', { hasText: 'http-flv' }).first().waitFor({ timeout: 10_000 });
  await page.locator('#legend span', { hasText: key }).waitFor({ timeout: 10_000 });
  await page.locator(`button[data-details="${key}"]`).click();
  await page.locator('#details', { hasText: `${width}×` }).waitFor({ timeout: 5_000 });
  await page.screenshot({ path: join(artifacts, 'console.png'), fullPage: true });
  if (external.length) throw new Error(`the console fetched from elsewhere: ${external.join(', ')}`);
  console.log('console.mjs: ok');
} catch (e) {
  failed = e;
  try {
    const page = context && context.pages()[0];
    if (page) await page.screenshot({ path: join(artifacts, 'console-failed.png'), fullPage: true });
  } catch {}
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
}
if (failed) {
  console.error('console.mjs: FAILED:', failed.message);
  process.exit(1);
}
