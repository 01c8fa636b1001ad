/** Pixel checks on the panel harness page: the WebGL canvas read back at each asset's beacon. */
import type { Page } from 'playwright-core';

type RGB = [number, number, number];

export interface Sample {
  key: string;
  x: number;
  y: number;
  best: RGB;
  distance: number;
}

/** An inclusive colour box: a pixel counts when each channel lies within [min, max]. */
export interface ColourBox {
  min: RGB;
  max: RGB;
}

interface CanvasReading {
  samples: Sample[];
  drawn: number;
  /** Pixels inside `box` (0 without one). */
  inBox: number;
}

/** One read-back of the panel's WebGL canvas (preserveDrawingBuffer), for every check below. */
function readCanvas(page: Page, wanted: Record<string, string>, box?: ColourBox): Promise<CanvasReading> {
  return page.evaluate(
    ({ wanted, box }) => {
      const canvas = document.querySelector<HTMLCanvasElement>('#panel canvas');
      if (!canvas) throw new Error('no canvas');
      const c2 = document.createElement('canvas');
      c2.width = canvas.width;
      c2.height = canvas.height;
      const ctx = c2.getContext('2d');
      if (!ctx) throw new Error('no 2d');
      ctx.drawImage(canvas, 0, 0);
      const img = ctx.getImageData(0, 0, c2.width, c2.height).data;
      const scale = canvas.width / canvas.clientWidth;
      const px = (x: number, y: number): [number, number, number] => {
        const i = (Math.round(y) * c2.width + Math.round(x)) * 4;
        return [img[i] ?? 0, img[i + 1] ?? 0, img[i + 2] ?? 0];
      };
      const bg = px(2, 2);
      let drawn = 0;
      for (let y = 0; y < c2.height; y += 4)
        for (let x = 0; x < c2.width; x += 4) {
          const p = px(x, y);
          if (Math.abs(p[0] - bg[0]) + Math.abs(p[1] - bg[1]) + Math.abs(p[2] - bg[2]) > 24) drawn++;
        }
      const cr = canvas.getBoundingClientRect();
      const samples = Array.from(document.querySelectorAll<HTMLElement>('#panel [data-asset]')).map((el) => {
        const r = el.getBoundingClientRect();
        const key = el.dataset.asset ?? '';
        const w = wanted[key] ?? '#000000';
        const want = [1, 3, 5].map((i) => parseInt(w.slice(i, i + 2), 16));
        const x = (r.left - cr.left) * scale;
        const y = (r.top - cr.top) * scale;
        let best: [number, number, number] = [0, 0, 0];
        let distance = Infinity;
        for (let dy = -4; dy <= 4; dy++)
          for (let dx = -4; dx <= 4; dx++) {
            const p = px(x + dx, y + dy);
            const d = Math.hypot(p[0] - (want[0] ?? 0), p[1] - (want[1] ?? 0), p[2] - (want[2] ?? 0));
            if (d < distance) {
              distance = d;
              best = p;
            }
          }
        return { key, x, y, best, distance };
      });
      let inBox = 0;
      if (box)
        for (let i = 0; i < img.length; i += 4) {
          const p = [img[i] ?? 0, img[i + 1] ?? 0, img[i + 2] ?? 0];
          if (p.every((v, c) => v >= (box.min[c] ?? 0) && v <= (box.max[c] ?? 255))) inBox++;
        }
      return { samples, drawn: drawn / ((c2.width / 4) * (c2.height / 4)), inBox };
    },
    { wanted, box },
  );
}

/** At each asset's beacon, the closest pixel to the wanted colour; `drawn`: share of non-background pixels. */
export async function sampleBeacons(
  page: Page,
  wanted: Record<string, string>,
): Promise<{ samples: Sample[]; drawn: number }> {
  const { samples, drawn } = await readCanvas(page, wanted);
  return { samples, drawn };
}

/** How many canvas pixels have a colour inside `box`. */
export async function countPixels(page: Page, box: ColourBox): Promise<number> {
  return (await readCanvas(page, {}, box)).inBox;
}
