// The tab's one live connection (GET /v1/live, server-sent events): the overview,
// and the log of the one job or agent the page shows. Switching pages opens a new
// one for the new item and closes the old.
import { useEffect, useState } from 'preact/hooks';
import type { JobEvent } from '../schemas/types.gen.js';
import type { LiveOverview as Overview } from '../schemas/live.js';

export type { Overview };

export interface LiveItem {
  kind: 'job' | 'agent';
  id: string;
}

export interface LiveHandlers {
  overview(o: Overview): void;
  event?(e: JobEvent): void;
  /** The session or its token ended. */
  ended(reason: string): void;
  connected?(up: boolean): void;
}

export function openLive(item: LiveItem | null, h: LiveHandlers): () => void {
  const q = item ? `?${item.kind}=${encodeURIComponent(item.id)}` : '';
  const source = new EventSource(`/v1/live${q}`);
  source.addEventListener('open', () => h.connected?.(true));
  source.addEventListener('error', () => h.connected?.(false));
  source.addEventListener('overview', (m) => h.overview(JSON.parse((m as MessageEvent).data)));
  for (const name of ['job', 'agent-log']) source.addEventListener(name, (m) => h.event?.(JSON.parse((m as MessageEvent).data)));
  source.addEventListener('end', (m) => {
    source.close();
    h.ended(JSON.parse((m as MessageEvent).data).reason);
  });
  return () => source.close();
}

/** Re-renders every second, for durations of what still runs. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
