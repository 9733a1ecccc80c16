// sluice web console: polls the JSON API every 2 s, keeps 5 minutes of history in the page for
// the charts, and previews a stream over HTTP-FLV with the vendored mpegts.js or over LL-HLS with
// the vendored hls.js, showing the player's live latency. No other code is loaded, so it works
// with no internet access.
'use strict';

const POLL_MS = 2000;
const HISTORY_MS = 5 * 60 * 1000;
const COLORS = ['#2f6fdf', '#d9480f', '#2b8a3e', '#862e9c', '#e67700', '#0b7285', '#c2255c', '#5c940d'];

const state = {
  token: localStorage.getItem('sluice-token') || '',
  history: new Map(), // key -> [{t, bps, viewers}]
  colors: new Map(),
  selected: null,
  player: null,
  playerKey: null,
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(method, path) {
  const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
  const r = await fetch('/api/v1/' + path, { method, headers, cache: 'no-store' });
  if (r.status === 401) {
    $('#token-form').hidden = false;
    throw new Error('the API needs a token');
  }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function fmtBits(bps) {
  if (bps >= 1e6) return (bps / 1e6).toFixed(2) + ' Mbit/s';
  if (bps >= 1e3) return (bps / 1e3).toFixed(0) + ' kbit/s';
  return Math.round(bps) + ' bit/s';
}

function fmtBytes(b) {
  if (b >= 1 << 30) return (b / (1 << 30)).toFixed(2) + ' GiB';
  if (b >= 1 << 20) return (b / (1 << 20)).toFixed(1) + ' MiB';
  if (b >= 1 << 10) return (b / (1 << 10)).toFixed(0) + ' KiB';
  return b + ' B';
}

function fmtDuration(secs) {
  secs = Math.floor(secs);
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + s + 's';
}

function colorOf(key) {
  if (!state.colors.has(key)) state.colors.set(key, COLORS[state.colors.size % COLORS.length]);
  return state.colors.get(key);
}

function videoText(v) {
  if (!v) return '—';
  let t = v.codec;
  if (v.width) t += ` ${v.width}×${v.height}`;
  return t;
}

function audioText(a) {
  if (!a) return '—';
  let t = a.codec;
  if (a.sample_rate) t += ` ${a.sample_rate / 1000} kHz`;
  if (a.channels) t += ` ${a.channels}ch`;
  return t;
}

function renderStreams(streams) {
  const tbody = $('#streams tbody');
  tbody.replaceChildren();
  $('#no-streams').hidden = streams.length > 0;
  for (const s of streams) {
    const row = el('tr', { 'data-key': s.key },
      el('td', {}, el('i', { class: 'swatch', style: `background:${colorOf(s.key)};display:inline-block;width:.7em;height:.7em;margin-right:.4em` }), s.key),
      el('td', {}, videoText(s.video)),
      el('td', {}, audioText(s.audio)),
      el('td', { class: 'num' }, s.fps.toFixed(1)),
      el('td', { class: 'num' }, fmtBits(s.bitrate_bps)),
      el('td', { class: 'num' }, s.gop_ms ? (s.gop_ms / 1000).toFixed(1) + ' s' : '—'),
      el('td', { class: 'num' }, s.viewers),
      el('td', {}, s.publisher ? s.publisher.peer : (s.publishing ? '?' : 'waiting')),
      el('td', { class: 'num' }, fmtDuration(s.uptime_secs)),
      el('td', {},
        el('button', { 'data-preview': s.key, onclick: () => startPreview(s.key) }, 'Preview'), ' ',
        el('button', { 'data-details': s.key, onclick: () => { state.selected = s.key; renderDetails(s); } }, 'Details'), ' ',
        el('button', { class: 'danger', 'data-end': s.key, onclick: () => endStream(s.key) }, 'End')));
    tbody.append(row);
  }
}

function renderClients(clients) {
  const tbody = $('#clients tbody');
  tbody.replaceChildren();
  const now = Date.now();
  for (const c of clients) {
    tbody.append(el('tr', { 'data-id': c.id },
      el('td', { class: 'num' }, c.id),
      el('td', {}, c.role),
      el('td', {}, c.protocol),
      el('td', {}, c.peer),
      el('td', {}, c.app + '/' + c.stream),
      el('td', { class: 'num' }, fmtBytes(c.bytes)),
      el('td', { class: 'num' }, fmtDuration((now - c.since_unix_ms) / 1000)),
      el('td', {}, el('button', { class: 'danger', 'data-kick': c.id, onclick: () => kick(c.id) }, 'Kick'))));
  }
}

function renderDetails(s) {
  $('#details-section').hidden = false;
  $('#details-title').textContent = s.key;
  const rows = [
    ['publishing', s.publishing ? 'yes' : 'no'],
    ['publisher', s.publisher ? `#${s.publisher.id} ${s.publisher.protocol} ${s.publisher.peer}` : '—'],
    ['video', videoText(s.video) + (s.video && s.video.profile_idc ? ` (profile ${s.video.profile_idc}, level ${s.video.level_idc})` : '')],
    ['audio', audioText(s.audio)],
    ['bitrate', fmtBits(s.bitrate_bps)],
    ['frame rate', s.fps.toFixed(2) + ' fps'],
    ['GOP', s.gop_ms ? `${s.gop_ms} ms, ${fmtBytes(s.gop_bytes)}` : '—'],
    ['viewers', `${s.viewers} (` + Object.entries(s.viewers_by_protocol).map(([p, n]) => `${p} ${n}`).join(', ') + ')'],
    ['ring', `${fmtBytes(s.ring_bytes)}, ${s.ring_frames} frames`],
    ['received', `${fmtBytes(s.bytes_in)}, ${s.frames_in} frames`],
    ['GOP skips', s.gop_skips],
    ['cut off (slow / kicked)', `${s.slow_viewers_cut_off} / ${s.viewers_kicked}`],
    ['breaker trips', s.breaker_trips],
    ['uptime', fmtDuration(s.uptime_secs)],
    ['play', `${location.origin}/${s.key}.flv`],
  ];
  $('#details').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

function record(streams) {
  const t = Date.now();
  const seen = new Set();
  for (const s of streams) {
    seen.add(s.key);
    if (!state.history.has(s.key)) state.history.set(s.key, []);
    state.history.get(s.key).push({ t, bps: s.bitrate_bps, viewers: s.viewers });
  }
  for (const [key, h] of state.history) {
    if (!seen.has(key)) h.push({ t, bps: null, viewers: null });
    while (h.length && h[0].t < t - HISTORY_MS) h.shift();
    if (!h.some((p) => p.bps !== null)) state.history.delete(key);
  }
}

function drawChart(canvas, field, scale, unit) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, L = 44, B = 18;
  ctx.clearRect(0, 0, W, H);
  const now = Date.now();
  let max = 0;
  for (const h of state.history.values()) for (const p of h) if (p[field] !== null) max = Math.max(max, p[field] * scale);
  max = max > 0 ? max * 1.15 : 1;
  ctx.strokeStyle = '#e3e6ea'; ctx.fillStyle = '#6b7480'; ctx.font = '11px system-ui, sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = (H - B) - (H - B - 6) * i / 4;
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W, y); ctx.stroke();
    const v = max * i / 4;
    ctx.fillText(v >= 10 ? v.toFixed(0) : v.toFixed(1), 2, y + 4);
  }
  for (let m = 0; m <= 5; m++) {
    const x = L + (W - L) * (1 - m / 5);
    ctx.fillText(m ? `-${m}m` : 'now', Math.min(x - 8, W - 24), H - 4);
  }
  for (const [key, h] of state.history) {
    ctx.strokeStyle = colorOf(key); ctx.lineWidth = 2; ctx.beginPath();
    let pen = false;
    for (const p of h) {
      if (p[field] === null) { pen = false; continue; }
      const x = L + (W - L) * (1 - (now - p.t) / HISTORY_MS);
      const y = (H - B) - (H - B - 6) * (p[field] * scale) / max;
      if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      pen = true;
    }
    ctx.stroke();
  }
  canvas.title = unit;
}

function drawCharts() {
  drawChart($('#chart-bitrate'), 'bps', 1e-6, 'Mbit/s');
  drawChart($('#chart-viewers'), 'viewers', 1, 'viewers');
  $('#legend').replaceChildren(...[...state.history.keys()].map((k) =>
    el('span', {}, el('i', { style: `background:${colorOf(k)}` }), k)));
}

async function poll() {
  try {
    const [health, streams, clients] = await Promise.all([api('GET', 'health'), api('GET', 'streams'), api('GET', 'clients')]);
    $('#health').textContent = `up ${fmtDuration(health.uptime_secs)} · ${health.streams} streams · ${health.clients} clients · v${health.version}`;
    record(streams.streams);
    renderStreams(streams.streams);
    renderClients(clients.clients);
    if (state.selected) {
      const s = streams.streams.find((x) => x.key === state.selected);
      if (s) renderDetails(s); else { $('#details-section').hidden = true; state.selected = null; }
    }
    drawCharts();
  } catch (e) {
    $('#health').textContent = 'error: ' + e.message;
  }
}

async function kick(id) {
  try { await api('DELETE', 'clients/' + id); } catch (e) { alert(e.message); }
  poll();
}

async function endStream(key) {
  if (!confirm(`End the publish of ${key}? Its viewers will be disconnected.`)) return;
  try { await api('DELETE', 'streams/' + key); } catch (e) { alert(e.message); }
  poll();
}

// A preview player is { destroy(), stats() }: stats() gives what the panel next to the video
// shows, in seconds, null where the player cannot tell.
const VIA = { flv: 'HTTP-FLV · mpegts.js', hls: 'LL-HLS · hls.js' };

function playVideo(media) { // a <video> or an mpegts.js player
  const p = media.play();
  if (p && p.catch) p.catch((e) => { $('#player-status').textContent = 'play: ' + e.message; });
}

function flvPlayer(key, video) {
  if (!window.mpegts || !mpegts.isSupported()) throw new Error('this browser has no Media Source Extensions: cannot preview');
  const player = mpegts.createPlayer(
    { type: 'flv', isLive: true, url: `${location.origin}/${key}.flv` },
    { enableStashBuffer: false, liveBufferLatencyChasing: true, lazyLoad: false });
  player.on(mpegts.Events.ERROR, (type, detail) => { $('#player-status').textContent = `error: ${type} ${detail}`; });
  player.attachMediaElement(video);
  player.load();
  playVideo(player);
  return {
    destroy() { player.pause(); player.unload(); player.detachMediaElement(); player.destroy(); },
    // FLV carries no wall-clock time and no live edge the page can see.
    stats: () => ({ latency: null, target: null, wall: null }),
  };
}

function hlsPlayer(key, video) {
  const url = `${location.origin}/${key}/index.m3u8`;
  if (window.Hls && Hls.isSupported()) {
    // Up to 1.5x to get back to the target latency after a stall.
    const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5, liveSyncDuration: 1, liveMaxLatencyDuration: 4, backBufferLength: 30 });
    let recovered = false;
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (!d.fatal) return;
      // One try at a decoder reset (hls.js's advice for a fatal media error), then give up.
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) { recovered = true; hls.recoverMediaError(); return; }
      $('#player-status').textContent = `error: ${d.type} ${d.details}`;
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => playVideo(video));
    hls.loadSource(url);
    hls.attachMedia(video);
    return {
      destroy() { hls.destroy(); },
      stats: () => ({
        latency: hls.latency || null,
        target: hls.targetLatency,
        wall: hls.playingDate ? (Date.now() - hls.playingDate.getTime()) / 1000 : null,
      }),
    };
  }
  if (video.canPlayType('application/vnd.apple.mpegurl')) { // Safari plays (LL-)HLS itself
    video.src = url;
    playVideo(video);
    return {
      destroy() { video.removeAttribute('src'); video.load(); },
      stats: () => ({ latency: null, target: null, wall: null }),
    };
  }
  throw new Error('this browser has neither Media Source Extensions nor HLS: cannot preview');
}

function stopPreview() {
  if (state.player) {
    state.player.destroy();
    state.player = null;
  }
  state.playerKey = null;
  $('#player-section').hidden = true;
}

function startPreview(key) {
  stopPreview();
  const via = $('#preview-via').value;
  const video = $('#preview');
  $('#player-section').hidden = false;
  $('#player-title').textContent = key;
  $('#player-via').textContent = VIA[via];
  $('#player-status').textContent = 'loading…';
  showStats();
  try {
    state.player = via === 'hls' ? hlsPlayer(key, video) : flvPlayer(key, video);
    state.playerKey = key;
  } catch (e) {
    $('#player-status').textContent = e.message;
  }
}

function showStats() {
  const v = $('#preview');
  const s = state.player ? state.player.stats() : {};
  const secs = (x) => (typeof x === 'number' && isFinite(x) ? x.toFixed(2) + ' s' : '—');
  let ahead = null;
  for (let i = 0; i < v.buffered.length; i++) {
    if (v.buffered.start(i) <= v.currentTime && v.currentTime <= v.buffered.end(i)) ahead = v.buffered.end(i) - v.currentTime;
  }
  $('#player-latency').textContent = secs(s.latency);
  $('#player-target').textContent = secs(s.target);
  $('#player-wall').textContent = secs(s.wall);
  $('#player-buffer').textContent = secs(ahead);
}

$('#preview').addEventListener('timeupdate', () => {
  const v = $('#preview');
  if (state.playerKey) $('#player-status').textContent = `${v.videoWidth}×${v.videoHeight}, ${v.currentTime.toFixed(1)} s`;
});
$('#player-stop').addEventListener('click', stopPreview);
$('#preview-via').value = localStorage.getItem('sluice-preview-via') === 'hls' ? 'hls' : 'flv';
$('#preview-via').addEventListener('change', () => {
  localStorage.setItem('sluice-preview-via', $('#preview-via').value);
  if (state.playerKey) startPreview(state.playerKey);
});
setInterval(() => { if (state.player) showStats(); }, 500);
$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.token = $('#token').value;
  localStorage.setItem('sluice-token', state.token);
  $('#token-form').hidden = true;
  poll();
});

poll();
setInterval(poll, POLL_MS);
