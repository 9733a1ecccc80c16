// WebRTC in headless Chromium against sluice. Run by tests/webrtc.rs.
//
// SLUICE_MODE=whep (default): a page on another origin (a node http server on loopback, as a
//   site embedding the stream would be) plays /{stream}/whep with a plain RTCPeerConnection
//   (recvonly video + audio, offer POSTed as application/sdp, the answer applied). Checks from
//   getStats: video frames decoded and advancing at the stream's width, and (SLUICE_AUDIO=1)
//   audio packets received and samples decoded. Then DELETEs the session (200) and again (404).
//   Prints `result {...}` (time to first frame, frames, audio packets).
// SLUICE_MODE=whip: the page publishes its fake camera and microphone
//   (--use-fake-device-for-media-stream) to /{stream}/whip for SLUICE_PUBLISH_MS, then DELETEs.
//
// Env: SLUICE_URL, SLUICE_STREAM, SLUICE_WIDTH, SLUICE_AUDIO, SLUICE_TOKEN (sent as
// Authorization: Bearer), SLUICE_CHROMIUM, SLUICE_NODE_PATH.
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name, dflt) => {
  const v = process.env[name] ?? dflt;
  if (v === undefined) { console.error(`whep.mjs: ${name} is not set`); process.exit(2); }
  return v;
};
const base = env('SLUICE_URL');
const key = env('SLUICE_STREAM');
const mode = env('SLUICE_MODE', 'whep');
const width = Number(env('SLUICE_WIDTH', '0'));
const wantAudio = env('SLUICE_AUDIO', '0') === '1';
const token = env('SLUICE_TOKEN', '');
const publishMs = Number(env('SLUICE_PUBLISH_MS', '6000'));
const require = createRequire(join(env('SLUICE_NODE_PATH'), 'noop.js'));
const { chromium } = require('playwright-core');

const watchdog = setTimeout(() => { console.error('whep.mjs: timed out'); process.exit(3); }, 50_000);

const site = createServer((req, res) => {
  res.writeHead(req.url === '/page.html' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(req.url === '/page.html' ? '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><video id="v" muted autoplay playsinline></video>' : 'not found');
});
await new Promise((ok) => site.listen(0, '127.0.0.1', ok));
const siteUrl = `http://127.0.0.1:${site.address().port}`;

const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
let context;
let failed = null;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: env('SLUICE_CHROMIUM'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(`${siteUrl}/page.html`, { waitUntil: 'load' });

  const endpoint = `${base}/${key}/${mode}`;
  const started = await page.evaluate(async ({ endpoint, token, mode }) => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    if (mode === 'whip') {
      const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
      for (const t of media.getTracks()) pc.addTransceiver(t, { direction: 'sendonly' });
    } else {
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.ontrack = (e) => {
        const v = document.getElementById('v');
        if (!v.srcObject) v.srcObject = new MediaStream();
        v.srcObject.addTrack(e.track);
      };
    }
    await pc.setLocalDescription(await pc.createOffer());
    const headers = { 'Content-Type': 'application/sdp' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const t0 = performance.now();
    const r = await fetch(endpoint, { method: 'POST', headers, body: pc.localDescription.sdp });
    const answer = await r.text();
    const location = r.headers.get('Location');
    if (r.status !== 201) return { status: r.status, answer };
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    window.t0 = t0;
    return { status: r.status, location, candidates: answer.split('\n').filter((l) => l.startsWith('a=candidate')) };
  }, { endpoint, token, mode });
  console.log(`POST ${endpoint} -> ${JSON.stringify(started)}`);
  if (started.status !== 201) throw new Error(`POST ${endpoint} answered ${started.status}: ${started.answer}`);
  if (!started.location || !started.location.startsWith('/webrtc/')) throw new Error(`bad Location ${started.location}`);

  const stats = () => page.evaluate(async () => {
    const out = { state: window.pc.connectionState, video: null, audio: null, outVideo: null, outAudio: null, t: performance.now() - window.t0 };
    for (const s of (await window.pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.video = { framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, packets: s.packetsReceived, lost: s.packetsLost, keyframes: s.keyFramesDecoded, freezes: s.freezeCount, pli: s.pliCount, nack: s.nackCount };
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audio = { packets: s.packetsReceived, samples: s.totalSamplesReceived, concealed: s.concealedSamples };
      if (s.type === 'outbound-rtp' && s.kind === 'video') out.outVideo = { frames: s.framesEncoded, packets: s.packetsSent };
      if (s.type === 'outbound-rtp' && s.kind === 'audio') out.outAudio = { packets: s.packetsSent };
    }
    return out;
  });

  if (mode === 'whip') {
    const deadline = Date.now() + publishMs;
    let last = null;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      last = await stats();
      console.log(`stats ${JSON.stringify(last)}`);
    }
    if (!last || last.state !== 'connected') throw new Error(`not connected: ${JSON.stringify(last)}`);
    if (!last.outVideo || last.outVideo.packets < 50) throw new Error(`video not sent: ${JSON.stringify(last)}`);
    console.log(`result ${JSON.stringify({ connected: true, sent: last })}`);
  } else {
    // Time to the first decoded frame, then frames must keep coming for 3 s.
    let first = null;
    let s = null;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      s = await stats();
      if (s.video && s.video.framesDecoded > 0) { first = s; break; }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!first) throw new Error(`no video frame decoded in 15 s: ${JSON.stringify(s)}`);
    console.log(`first frame ${JSON.stringify(first)}`);
    await new Promise((r) => setTimeout(r, 3000));
    const later = await stats();
    console.log(`later ${JSON.stringify(later)}`);
    const decoded = later.video.framesDecoded - first.video.framesDecoded;
    if (decoded < 30) throw new Error(`only ${decoded} frames decoded in 3 s`);
    if (width && later.video.frameWidth !== width) throw new Error(`frameWidth ${later.video.frameWidth}, want ${width}`);
    if (wantAudio) {
      if (!later.audio || later.audio.packets < 50) throw new Error(`audio packets: ${JSON.stringify(later.audio)}`);
      if (!(later.audio.samples > 48000)) throw new Error(`audio samples: ${JSON.stringify(later.audio)}`);
    }
    console.log(`result ${JSON.stringify({ first_frame_ms: Math.round(first.t), decoded_in_3s: decoded, width: later.video.frameWidth, audio: later.audio, video: later.video })}`);
  }

  // End the session: 200, then it is gone (404).
  const del = await page.evaluate(async ({ base, loc }) => {
    const a = await fetch(base + loc, { method: 'DELETE' });
    const b = await fetch(base + loc, { method: 'DELETE' });
    return [a.status, b.status];
  }, { base, loc: started.location });
  console.log(`DELETE -> ${del}`);
  if (del[0] !== 200 || del[1] !== 404) throw new Error(`DELETE answered ${del}`);
} catch (e) {
  failed = e;
  console.error(`whep.mjs: ${e.stack || e}`);
} finally {
  if (context) await context.close().catch(() => {});
  site.close();
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
