// Starts Debian's headless Chromium ($CHROMIUM, else /usr/bin/chromium) the way every browser test
// needs it: no sandbox (CI runs as root), no GPU, nothing that calls home, media that plays
// without a click, and WebRTC allowed to reach a node on loopback. QUIC is off so that HTTP
// requests go over the TCP the node serves.
import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
      '--allow-loopback-in-peer-connection'],
  });
}
