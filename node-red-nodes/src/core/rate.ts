/** Counts events over a sliding window of one-second buckets; pure (the caller passes the time). */
export class RateMeter {
  private readonly buckets: number[];
  private current = 0;
  private currentSecond = 0;
  total = 0;

  constructor(private readonly windowSeconds = 5) {
    this.buckets = new Array<number>(windowSeconds).fill(0);
  }

  add(count: number, now: number): void {
    this.roll(now);
    this.buckets[this.current] = (this.buckets[this.current] ?? 0) + count;
    this.total += count;
  }

  /** Events per second over the completed part of the window. */
  perSecond(now: number): number {
    this.roll(now);
    let sum = 0;
    for (let i = 0; i < this.buckets.length; i++) if (i !== this.current) sum += this.buckets[i] ?? 0;
    return sum / (this.windowSeconds - 1);
  }

  private roll(now: number): void {
    const second = Math.floor(now / 1000);
    if (this.currentSecond === 0) this.currentSecond = second;
    const steps = Math.min(second - this.currentSecond, this.windowSeconds);
    for (let i = 0; i < steps; i++) {
      this.current = (this.current + 1) % this.windowSeconds;
      this.buckets[this.current] = 0;
    }
    if (steps > 0) this.currentSecond = second;
  }
}

/** 1234567 → "1.2M", 12345 → "12.3k": short numbers for node status text. */
export function shortCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}
