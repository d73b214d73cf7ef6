// The layer rules of docs/architecture.md, held against the code: every relative
// import (type-only ones too) goes to the file's own layer or one its row allows,
// and no file reaches itself through its imports.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoPath } from '../../hub/platform/paths.js';

const root = repoPath('.');

interface Layer {
  name: string;
  holds: string[];
  mayImport: Set<string>;
}

function layers(): Layer[] {
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const table = doc.slice(doc.indexOf('<!-- layers:begin -->'), doc.indexOf('<!-- layers:end -->'));
  return table
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| layer') && !l.startsWith('| ---'))
    .map((l) => {
      const [name, holds, , may] = l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      return {
        name: name!,
        holds: [...holds!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
        mayImport: new Set(
          may!
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        ),
      };
    });
}

function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(join(root, dir))) {
      const path = join(dir, name);
      if (statSync(join(root, path)).isDirectory()) walk(path);
      else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
    }
  };
  for (const dir of ['hub', 'schemas', 'runtime', 'client', 'action', 'cli', 'web']) walk(dir);
  return out;
}

/** The files a source imports (relative specifiers only), as paths from the repository's root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  return specs
    .map((s) => relative(root, resolve(root, dirname(file), s)).replace(/\.js$/, '.ts'))
    .map((p) => (p.endsWith('.ts') || p.endsWith('.tsx') || p.endsWith('.json') ? p : `${p}.ts`));
}

function layerOf(file: string, all: Layer[]): Layer | undefined {
  // The most specific entry wins: `hub/api/` over a whole-folder entry, a file over its folder.
  let best: { layer: Layer; len: number } | undefined;
  for (const layer of all) {
    for (const h of layer.holds) {
      const hit = h.endsWith('/') ? file.startsWith(h) : file === h || (h.endsWith('.ts') && file === h.replace(/\.ts$/, '.tsx'));
      if (hit && (!best || h.length > best.len)) best = { layer, len: h.length };
    }
  }
  return best?.layer;
}

describe('the layers of docs/architecture.md', () => {
  const all = layers();
  const files = sources();

  it('has a row for each layer, each naming only layers that exist', () => {
    const names = new Set(all.map((l) => l.name));
    expect(names.size).toBeGreaterThanOrEqual(10);
    for (const l of all) for (const m of l.mayImport) expect(names, `${l.name} may import ${m}`).toContain(m);
  });

  it('places every source file in a layer', () => {
    expect(files.filter((f) => !layerOf(f, all))).toEqual([]);
  });

  it('has no import that goes where its layer may not', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const from = layerOf(file, all)!;
      for (const target of importsOf(file)) {
        if (target.endsWith('.json')) continue;
        const to = layerOf(target, all);
        if (!to) wrong.push(`${file} imports ${target}, which no layer holds`);
        else if (to !== from && !from.mayImport.has(to.name)) wrong.push(`${file} (${from.name}) imports ${target} (${to.name})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import cycle between files', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => files.includes(t))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (f: string) => {
      state.set(f, 'open');
      path.push(f);
      for (const t of graph.get(f) ?? []) {
        if (state.get(t) === 'open') cycles.push([...path.slice(path.indexOf(t)), t].join(' → '));
        else if (!state.has(t)) visit(t);
      }
      path.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('keeps named agents and jobs apart (neither may import the other) and places a file by its most specific entry', () => {
    expect(all.find((l) => l.name === 'jobs')!.mayImport.has('agents')).toBe(false);
    expect(all.find((l) => l.name === 'agents')!.mayImport.has('jobs')).toBe(false);
    expect(layerOf('hub/backend/docker/backend.ts', all)!.name).toBe('backend');
    expect(layerOf('hub/api/runtime-channel.ts', all)!.name).toBe('http');
  });

  it("keeps only the entry points at hub/'s root; everything else sits in a folder that says its layer", () => {
    const loose = readdirSync(join(root, 'hub')).filter((n) => statSync(join(root, 'hub', n)).isFile());
    expect(loose.sort()).toEqual(
      all
        .find((l) => l.name === 'entry')!
        .holds.map((h) => h.replace('hub/', ''))
        .sort(),
    );
  });
});
