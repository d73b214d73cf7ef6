// How numbers and times read on the page.

export function duration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** From start (or creation) to end, or to now while it runs. */
export function elapsed(from: string | null | undefined, to: string | null | undefined, now = Date.now()): string {
  if (!from) return '–';
  return duration((to ? Date.parse(to) : now) - Date.parse(from));
}

export function bytes(n: number | null | undefined): string {
  if (n == null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i && v < 10 ? 1 : 0)} ${units[i]}`;
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '–';
  return `${duration(now - Date.parse(iso))} ago`;
}

export function percent(r: number | null | undefined): string {
  return r == null ? '–' : `${Math.round(r * 1000) / 10}%`;
}

/** A principal id (`token:…`, `github:…`) short enough for a table. */
export function owner(id: string | null | undefined): string {
  if (!id) return '–';
  const [kind, rest = ''] = id.split(':');
  return kind === 'token' ? `token ${rest.slice(0, 8)}` : id;
}
