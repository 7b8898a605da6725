// Plays a WHEP URL in headless Chromium (RTCPeerConnection, recvonly video and audio) and prints
// what the browser decoded, as JSON:
//   node whep_play.mjs <whep-url> <seconds> [bearer-token]
// Reports the POST's status, then once a second the video track's framesDecoded, frameWidth and
// freezeCount and the audio track's packets, samples and concealed samples from getStats
// (inbound-rtp), the loudest RMS level of the decoded audio (WebAudio), and fatal errors.
import http from 'node:http';
import { launch } from './launch.mjs';

const [url, seconds = '8', token = ''] = process.argv.slice(2);
if (!url) {
  console.error('usage: node whep_play.mjs <whep-url> <seconds> [bearer-token]');
  process.exit(2);
}
const page = `<!doctype html><html><body>
<video id="v" muted autoplay playsinline></video>
<script>
  window.errors = [];
  // The loudest RMS seen in the received audio (WebAudio reads the decoded samples).
  window.loudest = 0;
  const listen = (track) => {
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      const rms = Math.sqrt(buf.reduce((a, x) => a + x * x, 0) / buf.length);
      window.loudest = Math.max(window.loudest, rms);
    }, 100);
  };
  window.status = 0;
  window.stats = async () => {
    if (!window.pc) return null;
    const report = await window.pc.getStats();
    let video = null;
    let audio = null;
    report.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') video = r;
      if (r.type === 'inbound-rtp' && r.kind === 'audio') audio = r;
    });
    return video && { framesDecoded: video.framesDecoded || 0, width: video.frameWidth || 0,
                      freezes: video.freezeCount || 0, packetsLost: video.packetsLost || 0,
                      audioPackets: (audio && audio.packetsReceived) || 0,
                      audioSamples: (audio && audio.totalSamplesReceived) || 0,
                      audioConcealed: (audio && audio.concealedSamples) || 0,
                      audioRms: window.loudest };
  };
  (async () => {
    try {
      const pc = new RTCPeerConnection();
      window.pc = pc;
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.ontrack = (e) => {
        document.getElementById('v').srcObject = e.streams[0] || new MediaStream([e.track]);
        if (e.track.kind === 'audio') listen(e.track);
      };
      await pc.setLocalDescription(await pc.createOffer());
      const headers = { 'Content-Type': 'application/sdp' };
      if (${JSON.stringify(token)}) headers.Authorization = 'Bearer ' + ${JSON.stringify(token)};
      const r = await fetch(${JSON.stringify(url)}, { method: 'POST', headers, body: pc.localDescription.sdp });
      window.status = r.status;
      window.location_ = r.headers.get('Location');
      if (r.status !== 201) { window.errors.push('POST: ' + r.status + ' ' + await r.text()); return; }
      await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
    } catch (e) {
      window.errors.push(String(e));
    }
  })();
</script></body></html>`;
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(page);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const browser = await launch();
try {
  const tab = await browser.newPage();
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  const samples = [];
  for (let i = 0; i < Number(seconds); i++) {
    await tab.waitForTimeout(1000);
    samples.push(await tab.evaluate(() => window.stats()));
  }
  const status = await tab.evaluate(() => window.status);
  const location = await tab.evaluate(() => window.location_);
  const errors = await tab.evaluate(() => window.errors);
  console.log(JSON.stringify({ status, location, samples, errors }));
} finally {
  await browser.close();
  server.close();
}
