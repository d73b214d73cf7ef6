// Leaving a base's layers out of a `docker save` stream as it passes, in both
// layouts engines write; the real engine's round trip is in integration/snapshot.
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { legacyLayerIds, withoutLayers } from '../../hub/backend/docker/save-filter.js';

// As docker 20.10 writes it in each lower layer's `json`.
const EMPTY_CONFIG =
  '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}';
const diff = (c: string) => `sha256:${c.repeat(64)}`;

async function tarOf(entries: Array<[string, string]>, sorted = true): Promise<Readable> {
  const p = tar.pack();
  for (const [name, content] of sorted ? [...entries].sort(([a], [b]) => a.localeCompare(b)) : entries) {
    if (name.endsWith('/')) p.entry({ name, type: 'directory' });
    else p.entry({ name }, content);
  }
  p.finalize();
  return p as unknown as Readable;
}

async function namesIn(stream: NodeJS.ReadableStream): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const ex = tar.extract();
  stream.pipe(ex);
  for await (const e of ex) {
    let text = '';
    for await (const c of e) text += c;
    found.set(e.header.name, text);
  }
  return found;
}

describe('a docker save without its base layers', () => {
  it('computes the legacy layer ids docker 20.10 writes', () => {
    // From a real `docker save` of a profile image on this project's engine.
    const ids = legacyLayerIds(
      ['sha256:af2574b949f674e5fc187809cb10ebc4626db5867c9616a2d8899a3a0ed1342e', 'sha256:07e190769f95842d3c750a2af9b8ac458522428a636473476ff9eb0aaf44bcf3'],
      EMPTY_CONFIG,
    );
    expect(ids).toEqual([
      'b65070009a1afb2ec83e8ed04be78f854e415d5ddc038b3b18702a90d690dc85',
      '2741276c89b6aab08069b0d59642a48e67531b9a0adde6dd7c85e377e50f2b75',
    ]);
  });

  it("leaves out the legacy layout's base layer dirs, keeps the rest, and adds the trailer", async () => {
    const [base0, base1] = [diff('a'), diff('b')];
    const [id0, id1] = legacyLayerIds([base0, base1], EMPTY_CONFIG);
    const top = 'f'.repeat(64);
    const lower = (id: string, parent?: string) =>
      JSON.stringify({ id, ...(parent ? { parent } : {}), created: '1970-01-01T00:00:00Z', container_config: JSON.parse(EMPTY_CONFIG), os: 'linux' });
    const save = await tarOf([
      [`${id0}/`, ''],
      [`${id0}/VERSION`, '1.0'],
      [`${id0}/json`, lower(id0!)],
      [`${id0}/layer.tar`, 'BASE0'],
      [`${id1}/`, ''],
      [`${id1}/VERSION`, '1.0'],
      [`${id1}/json`, lower(id1!, id0)],
      [`${id1}/layer.tar`, 'BASE1'],
      [`${top}/`, ''],
      [`${top}/VERSION`, '1.0'],
      [`${top}/json`, JSON.stringify({ id: top, parent: id1, created: '2026-12-01T00:00:00Z' })],
      [`${top}/layer.tar`, 'OWN'],
      [`${'e'.repeat(64)}.json`, '{}'],
      ['manifest.json', '[]'],
      ['repositories', '{}'],
    ]);
    const { stream, dropped } = withoutLayers(save, [base0, base1], (d) => [{ name: 'base.json', content: JSON.stringify([...d]) }]);
    const out = await namesIn(stream);
    expect([...out.keys()].filter((n) => n.startsWith(id0!) || n.startsWith(id1!))).toEqual([]);
    expect(out.get(`${top}/layer.tar`)).toBe('OWN');
    expect([...out.keys()]).toEqual(
      expect.arrayContaining([`${top}/`, `${top}/VERSION`, `${top}/json`, 'manifest.json', 'repositories', `${'e'.repeat(64)}.json`]),
    );
    expect(JSON.parse(out.get('base.json')!)).toEqual([base0, base1]);
    expect([...dropped]).toEqual([base0, base1]);
  });

  it("leaves out the OCI layout's base layer blobs, named by their diff ids", async () => {
    const [base0, own] = [diff('a'), diff('c')];
    const blob = (d: string) => `blobs/sha256/${d.slice(7)}`;
    const save = await tarOf([
      ['blobs/', ''],
      ['blobs/sha256/', ''],
      [blob(base0), 'BASE0'],
      [blob(own), 'OWN'],
      ['index.json', '{}'],
      ['manifest.json', '[]'],
      ['oci-layout', '{}'],
    ]);
    const out = await namesIn(withoutLayers(save, [base0], () => []).stream);
    expect(out.has(blob(base0))).toBe(false);
    expect(out.get(blob(own))).toBe('OWN');
    expect([...out.keys()]).toEqual(expect.arrayContaining(['index.json', 'manifest.json', 'oci-layout']));
  });

  it('keeps, without holding it, a legacy layer whose json comes after it', async () => {
    const [base0] = [diff('a')];
    const [id0] = legacyLayerIds([base0], EMPTY_CONFIG);
    const save = await tarOf(
      [
        [`${id0}/VERSION`, '1.0'],
        [`${id0}/layer.tar`, 'BASE0'],
        [`${id0}/json`, '{}'],
        ['manifest.json', '[]'],
      ],
      false,
    );
    const out = await namesIn(withoutLayers(save, [base0], () => []).stream);
    expect(out.get(`${id0}/layer.tar`)).toBe('BASE0');
    expect([...out.keys()]).toEqual([`${id0}/VERSION`, `${id0}/layer.tar`, `${id0}/json`, 'manifest.json']);
  });

  it('stops the save when its reader goes away', async () => {
    const save = Readable.from(
      (function* () {
        for (;;) yield Buffer.alloc(512);
      })(),
    );
    const { stream } = withoutLayers(save, [], () => []);
    stream.destroy();
    await new Promise((r) => setImmediate(r));
    expect(save.destroyed).toBe(true);
  });
});
