// The last minutes of each agent's CPU and memory, as its runtime reported them, for
// the dashboard's charts. In memory only: a restart starts the charts afresh.

import type { HealthPoint } from '../../schemas/live.js';

export class HealthHistory {
  private readonly points = new Map<string, HealthPoint[]>();

  /** `keep`: points per agent (at the default 5 s interval, 120 are ten minutes). */
  constructor(private readonly keep = 120) {}

  add(id: string, h: { cpuPercent: number; memoryBytes: number }, at = Date.now()): void {
    let list = this.points.get(id);
    if (!list) this.points.set(id, (list = []));
    list.push([Math.round(at / 100) / 10, h.cpuPercent, h.memoryBytes]);
    if (list.length > this.keep) list.splice(0, list.length - this.keep);
  }

  of(id: string): HealthPoint[] {
    return this.points.get(id) ?? [];
  }

  forget(id: string): void {
    this.points.delete(id);
  }
}
