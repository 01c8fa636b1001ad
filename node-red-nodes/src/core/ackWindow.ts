/**
 * Acknowledgements of received MQTT messages, in order. MQTT requires a client to send PUBACKs in the
 * order the PUBLISH packets arrived (MQTT 5 §4.6, [MQTT-4.6.0-2]); a message settled early waits for
 * the ones before it. Pure: the caller sends what settle() and expire() return.
 */
export class AckWindow {
  /** Packet ids in arrival order from `head`; 0 marks a QoS 0 message (nothing to send back). */
  private ids: number[] = [];
  private settled: boolean[] = [];
  private arrived: number[] = [];
  private head = 0;
  /** Slot number of ids[0] (slots count up forever; arrays are compacted from the front). */
  private base = 0;

  /** Messages received and not yet acknowledged. */
  get pending(): number {
    return this.ids.length - this.head;
  }

  /** Arrival time of the oldest message not yet acknowledged. */
  get oldestAt(): number | undefined {
    return this.head < this.ids.length ? this.arrived[this.head] : undefined;
  }

  /** A message arrived; returns its slot for settle(). packetId 0 for QoS 0. */
  add(packetId: number, now: number): number {
    this.ids.push(packetId);
    this.settled.push(false);
    this.arrived.push(now);
    return this.base + this.ids.length - 1;
  }

  /** The message in `slot` is safe; returns the packet ids to acknowledge now, in order. */
  settle(slot: number): number[] {
    const i = slot - this.base;
    if (i < this.head || i >= this.ids.length || this.settled[i]) return [];
    this.settled[i] = true;
    return i === this.head ? this.release() : [];
  }

  /**
   * Settle every message that arrived before `before` (a flow that never settles must not stall the
   * broker's window forever). Returns the ids to acknowledge and how many were forced.
   */
  expire(before: number): { ids: number[]; forced: number } {
    let forced = 0;
    for (let i = this.head; i < this.ids.length && (this.arrived[i] ?? 0) < before; i++) {
      if (!this.settled[i]) {
        this.settled[i] = true;
        forced++;
      }
    }
    return { ids: forced > 0 ? this.release() : [], forced };
  }

  /** Connection lost: forget everything (the broker redelivers what was not acknowledged). */
  clear(): void {
    this.base += this.ids.length;
    this.ids = [];
    this.settled = [];
    this.arrived = [];
    this.head = 0;
  }

  private release(): number[] {
    const out: number[] = [];
    while (this.head < this.ids.length && this.settled[this.head]) {
      const id = this.ids[this.head] ?? 0;
      if (id !== 0) out.push(id);
      this.head++;
    }
    if (this.head === this.ids.length) this.clear();
    else if (this.head > 4096 && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.settled = this.settled.slice(this.head);
      this.arrived = this.arrived.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
    return out;
  }
}
