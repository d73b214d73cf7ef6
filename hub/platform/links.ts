// The hub's public URLs, known once it listens, and the links built from them.

export interface Links {
  http: string;
  ws: string;
}

export function snapshotUrl(id: string, base: Links): string {
  return `${base.http}/v1/jobs/${id}/snapshot`;
}
