// Opens the index's dashboard in headless Chromium, says READY once the page has drawn, then waits
// until the streams table lists <stream> and the event feed shows its stream_published event,
// clicks the stream, waits until the page's player has played 3 s of it (the <video>'s currentTime),
// switches the player to WebRTC and waits until it has decoded 30 frames (getStats), then until the charts of the last 15 minutes draw <stream> among the streams and at least one node
// (a sample every 10 s), and saves a screenshot.
// Prints JSON: { listed, event, played, player, webrtcFrames, webrtcStatus, charts, screenshot, errors }, where charts maps each
// chart to the series it draws and its number of points.
//   node dashboard.mjs <dashboard-url> <app/stream> <screenshot.png> [seconds]
import { launch } from './launch.mjs';

const [url, stream, shot, seconds = '60'] = process.argv.slice(2);
if (!url || !stream || !shot) {
  console.error('usage: node dashboard.mjs <dashboard-url> <app/stream> <screenshot.png> [seconds]');
  process.exit(2);
}
const browser = await launch();
const errors = [];
try {
  const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  tab.on('pageerror', (e) => errors.push(String(e)));
  await tab.goto(url);
  await tab.waitForFunction(() => document.getElementById('status').textContent.includes('nodes up'), null,
    { timeout: 15000 });
  console.log('READY');
  let listed = false;
  let event = false;
  const deadline = Date.now() + Number(seconds) * 1000;
  while (Date.now() < deadline && !(listed && event)) {
    await tab.waitForTimeout(250);
    listed = await tab.evaluate((s) => [...document.querySelectorAll('#streams tbody tr')]
      .some((tr) => tr.firstChild && tr.firstChild.textContent === s), stream);
    event = await tab.evaluate((s) => [...document.querySelectorAll('#feed .stream_published')]
      .some((d) => d.textContent.includes('/' + s)), stream);
  }
  let played = 0;
  if (listed) {
    await tab.evaluate((s) => [...document.querySelectorAll('#streams tbody tr')]
      .find((tr) => tr.firstChild && tr.firstChild.textContent === s).click(), stream);
    while (Date.now() < deadline && played < 3) {
      await tab.waitForTimeout(250);
      played = await tab.evaluate(() => document.getElementById('player').currentTime);
    }
  }
  const player = await tab.evaluate(() => document.getElementById('player-status').textContent);
  let webrtcFrames = 0;
  if (played >= 3) {
    await tab.selectOption('#mode', 'whep');
    while (Date.now() < deadline && webrtcFrames < 30) {
      await tab.waitForTimeout(250);
      webrtcFrames = await tab.evaluate(async () => {
        if (!pc) return 0;
        let frames = 0;
        (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') frames = r.framesDecoded || 0; });
        return frames;
      });
    }
  }
  const webrtcStatus = await tab.evaluate(() => document.getElementById('player-status').textContent);
  const readCharts = () => tab.evaluate(() => Object.fromEntries(Object.entries(window.charts || {})
    .map(([id, c]) => [id, { series: c.series, points: c.points, canvas: !!document.querySelector('#' + id + ' canvas') }])));
  let charts = await readCharts();
  while (Date.now() < deadline) {
    const streams = charts['chart-stream-viewers'];
    const nodes = charts['chart-node-viewers'];
    if (streams && streams.series.includes(stream) && nodes && nodes.series.length > 0) break;
    await tab.waitForTimeout(500);
    charts = await readCharts();
  }
  await tab.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ listed, event, played, player, webrtcFrames, webrtcStatus, charts, screenshot: shot, errors }));
} finally {
  await browser.close();
}
