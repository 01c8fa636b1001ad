/** Headless Chromium for the panel harness: one place for the flags that work on this machine. */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The system Chromium (apt); a browser is never downloaded. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** NOTES.md "Browser": no GPU here, so WebGL2 goes through ANGLE + SwiftShader; no background traffic. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(`Chromium missing (${CHROMIUM_PATH}): apt-get install -y chromium`);
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
}
