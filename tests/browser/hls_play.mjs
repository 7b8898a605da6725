// Plays an HLS URL with hls.js in headless Chromium and prints what the <video> did, as JSON:
//   node hls_play.mjs <playlist-url> <seconds> [low-latency]
// With `low-latency`, hls.js runs with lowLatencyMode (LL-HLS parts, blocking reloads) and the
// report adds its live latency (hls.latency, seconds behind the live edge) once a second.
// The page is served from a local loopback server of this script (hls.js from node_modules);
// Chromium is Debian's /usr/bin/chromium (CHROMIUM overrides), driven by playwright-core.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { launch } from './launch.mjs';

const [url, seconds = '8', mode = ''] = process.argv.slice(2);
if (!url || (mode && mode !== 'low-latency')) {
  console.error('usage: node hls_play.mjs <playlist-url> <seconds> [low-latency]');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const hlsJs = await readFile(path.join(here, 'node_modules/hls.js/dist/hls.min.js'));
const page = `<!doctype html><html><body>
<video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
  window.errors = [];
  const video = document.getElementById('v');
  const hls = new Hls({ lowLatencyMode: ${mode === 'low-latency'} });
  window.hls = hls;
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.errors.push(d.type + ': ' + d.details); });
  hls.loadSource(${JSON.stringify(url)});
  hls.attachMedia(video);
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(e => window.errors.push('play: ' + e)));
</script></body></html>`;
const server = http.createServer((req, res) => {
  if (req.url === '/hls.min.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    res.end(hlsJs);
  } else {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(page);
  }
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const browser = await launch();
try {
  const tab = await browser.newPage();
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  const samples = [];
  const latency = [];
  for (let i = 0; i < Number(seconds); i++) {
    await tab.waitForTimeout(1000);
    samples.push(await tab.evaluate(() => document.getElementById('v').currentTime));
    latency.push(await tab.evaluate(() => window.hls.latency));
  }
  const errors = await tab.evaluate(() => window.errors);
  const parts = await tab.evaluate(() => !!(window.hls.levels[0] && window.hls.levels[0].details &&
    window.hls.levels[0].details.partList && window.hls.levels[0].details.partList.length));
  console.log(JSON.stringify({ samples, latency, parts, errors }));
} finally {
  await browser.close();
  server.close();
}
