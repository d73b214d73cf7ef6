// The dashboard in Debian's headless Chromium against a real hub and engine: sign-in
// with a session cookie, the live overview, a job's log streaming with its colours,
// cancel, an agent's chart, start/stop/destroy and its shell, what another principal
// sees, sign-out and revocation; and what a cross-site page cannot do with the cookie.
import http from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../client/index.js';
import { SESSION_COOKIE } from '../../hub/auth/authenticator.js';
import { launchBrowser, screenshot } from '../helpers/browser.js';
import { loadConfig } from '../../hub/platform/config.js';
import { collect, settledAgent, startTestHub, type TestHub } from '../helpers/hub.js';

/** The default DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL: live feeds count with the principal's other streams. */
const MAX_LIVE_PER_PRINCIPAL = loadConfig([], {}).maxStreamsPerPrincipal;

let t: TestHub;
let browser: Browser;
let alice: { client: HubClient; token: string; id: string };
let bob: { client: HubClient; token: string; id: string };
const contexts: BrowserContext[] = [];

async function principal(name: string) {
  const created = await t.client.createToken({ name, scopes: ['jobs'] });
  return { client: new HubClient({ url: t.hub.url, token: created.token }), token: created.token, id: created.id };
}

/** A fresh browser profile signed in with `token`, on the overview. */
async function signedIn(token: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(t.hub.url);
  await page.getByTestId('token').fill(token);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('who').waitFor();
  await page.locator('[data-testid=health]').waitFor();
  return page;
}

/** The visible lines of an xterm.js terminal (its DOM renderer's rows). */
function terminalLines(page: Page, testId: string): Promise<string[]> {
  return page
    .locator(`[data-testid=${testId}] .xterm-rows > div`)
    .allTextContents()
    .then((rows) => rows.map((r) => r.replace(/\u00a0/g, ' ').trimEnd()));
}

async function waitForLine(page: Page, testId: string, line: string | RegExp, timeout = 60_000): Promise<void> {
  await page.waitForFunction(
    ([id, text, isRe]) =>
      [...document.querySelectorAll(`[data-testid=${id}] .xterm-rows > div`)].some((r) => {
        const s = (r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd();
        return isRe ? new RegExp(text as string).test(s) : s === text;
      }),
    [testId, typeof line === 'string' ? line : line.source, typeof line !== 'string'] as const,
    { timeout },
  );
}

async function cookieOf(page: Page): Promise<string> {
  const c = (await page.context().cookies()).find((x) => x.name === SESSION_COOKIE)!;
  return `${c.name}=${c.value}`;
}

beforeAll(async () => {
  // Frequent health frames, so a chart gets its points in a second or two.
  t = await startTestHub({ DOCKER_AGENT_HEALTH_INTERVAL_MS: '300' });
  browser = await launchBrowser();
  alice = await principal('alice');
  bob = await principal('bob');
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await t?.close();
});

describe('the dashboard in a browser', () => {
  it('signs in with a token into an HttpOnly, SameSite=Strict session; the token is in no URL', async () => {
    const urls: string[] = [];
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(t.hub.url);
    await page.getByTestId('token').waitFor();
    await screenshot(page, 'sign-in');
    await page.getByTestId('token').fill('not-a-token');
    await page.getByTestId('sign-in').click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/wrong token/);
    await page.getByTestId('token').fill(alice.token);
    await page.getByTestId('sign-in').click();
    await expect(page.getByTestId('who').textContent()).resolves.toBe('alice');
    const cookie = (await context.cookies()).find((c) => c.name === SESSION_COOKIE)!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
    expect(cookie.value).not.toContain(alice.token);
    expect(urls.some((u) => u.includes(alice.token) || u.includes(cookie.value))).toBe(false);
    // Scripts cannot read the session.
    expect(await page.evaluate(() => document.cookie)).not.toContain(SESSION_COOKIE);
  });

  it('shows a job submitted through the API without a reload, and streams its log live with its colours', async () => {
    const page = await signedIn(alice.token);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const job = await alice.client.createJob({ run: "printf '\\033[32mgreen\\033[0m\\n'; for i in $(seq 1 8); do echo tick$i; sleep 0.4; done" });
    const row = page.locator(`tr[data-job="${job.id}"]`);
    await row.waitFor({ timeout: 60_000 });
    await screenshot(page, 'overview');
    await row.getByRole('link').click();
    await waitForLine(page, 'log', 'tick1');
    // Seen while the job still runs: the log came live, not at the end.
    expect((await alice.client.getJob(job.id)).state).toBe('running');
    await waitForLine(page, 'log', 'tick8');
    await page.locator('.item-head .state-succeeded').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('exit-code').textContent()).toBe('0');
    // \e[32m as xterm.js draws it: green (palette colour 2).
    await expect(page.locator('[data-testid=log] .xterm-fg-2', { hasText: 'green' }).count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('[data-testid=steps] tbody tr').first().textContent()).resolves.toMatch(/run.*succeeded.*0/);
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42);
    await screenshot(page, 'job');
  });

  it('cancels a running job from its page', async () => {
    const page = await signedIn(alice.token);
    const job = await alice.client.createJob({ run: 'echo started; sleep 300' });
    await page.goto(`${t.hub.url}/#/jobs/${job.id}`);
    await waitForLine(page, 'log', 'started');
    await page.getByTestId('cancel').click();
    await page.locator('.item-head .state-cancelled').waitFor({ timeout: 60_000 });
    expect((await alice.client.getJob(job.id)).state).toBe('cancelled');
    // What it printed is kept.
    expect(await terminalLines(page, 'log')).toContain('started');
  });

  it("links a job's snapshot, which downloads with the session", async () => {
    const page = await signedIn(alice.token);
    const job = await alice.client.createJob({ run: 'echo kept > /workspace/kept.txt', snapshot: true });
    await page.goto(`${t.hub.url}/#/jobs/${job.id}`);
    const link = page.getByTestId('snapshot');
    await link.waitFor({ timeout: 120_000 });
    const href = await link.getAttribute('href');
    expect(href).toBe(`/v1/jobs/${job.id}/snapshot`);
    const res = await fetch(`${t.hub.url}${href}`, { headers: { cookie: await cookieOf(page) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    await res.body?.cancel();
  });

  it("draws an agent's CPU and memory, runs `echo hi` in its shell, and stops, starts and destroys it", async () => {
    await alice.client.createAgent({ name: 'dash-agent' });
    expect(await settledAgent(alice.client, 'dash-agent')).toBe('running');
    const page = await signedIn(alice.token);
    await page.locator('a[data-agent=dash-agent]').click();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=cpu-chart]')?.getAttribute('data-points')) >= 3, undefined, {
      timeout: 30_000,
    });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=memory-chart]')?.getAttribute('data-points')) >= 3);
    await screenshot(page, 'agent');

    await page.getByTestId('open-shell').click();
    await page.locator('[data-testid=shell] .xterm-rows').waitFor();
    await page.locator('[data-testid=shell]').click();
    await page.keyboard.type('echo hi\n');
    await waitForLine(page, 'shell', 'hi', 30_000);
    await screenshot(page, 'shell');
    await page.getByTestId('open-shell').click();

    await page.getByTestId('stop').click();
    await page.locator('.item-head .state-stopped').waitFor({ timeout: 60_000 });
    expect((await alice.client.getAgent('dash-agent')).state).toBe('stopped');
    await page.getByTestId('start').click();
    await page.locator('.item-head .state-running').waitFor({ timeout: 60_000 });
    page.once('dialog', (d) => void d.accept());
    await page.getByTestId('destroy').click();
    await page.locator('[data-testid=health]').waitFor({ timeout: 60_000 });
    await expect(alice.client.getAgent('dash-agent')).rejects.toThrow(/no agent|not found/i);
  });

  it("does not show another principal's jobs, on the overview or by its address", async () => {
    const theirs = await bob.client.createJob({ run: 'echo bob' });
    const page = await signedIn(alice.token);
    // Alice's later job on the page means the overview was made after Bob's job existed.
    const mine = await alice.client.createJob({ run: 'echo alice' });
    await page.locator(`tr[data-job="${mine.id}"]`).waitFor({ timeout: 60_000 });
    expect(await page.locator(`tr[data-job="${theirs.id}"]`).count()).toBe(0);
    await page.goto(`${t.hub.url}/#/jobs/${theirs.id}`);
    await page.reload();
    await page.getByText('no such job (or not yours)').waitFor();
    const res = await fetch(`${t.hub.url}/v1/live?job=${theirs.id}`, { headers: { cookie: await cookieOf(page) } });
    expect(res.status).toBe(404);
  });

  it('lays out on a phone without sideways scrolling', async () => {
    const page = await signedIn(alice.token, { width: 390, height: 844 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(await overflow()).toBeLessThanOrEqual(0);
    await screenshot(page, 'phone-overview');
    const job = (await alice.client.listJobs({ limit: 1 })).jobs[0]!;
    await page.goto(`${t.hub.url}/#/jobs/${job.id}`);
    await page.locator('[data-testid=log] .xterm-rows').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(0);
    await screenshot(page, 'phone-job');
  });

  it('signing out ends the session: the cookie no longer opens anything', async () => {
    const page = await signedIn(alice.token);
    const cookie = await cookieOf(page);
    expect((await fetch(`${t.hub.url}/v1/jobs`, { headers: { cookie } })).status).toBe(200);
    await page.getByTestId('sign-out').click();
    await page.getByTestId('token').waitFor();
    const after = await fetch(`${t.hub.url}/v1/jobs`, { headers: { cookie } });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { message: string } }).error.message).toMatch(/session has ended/);
  });

  it('revoking the token ends its sessions and their live streams at once', async () => {
    const carol = await principal('carol');
    const page = await signedIn(carol.token);
    const cookie = await cookieOf(page);
    await t.client.revokeToken(carol.id);
    // The page's live stream is ended by the hub and the page asks for a sign-in.
    await page.getByText(/Signed out: token revoked/).waitFor({ timeout: 10_000 });
    expect((await fetch(`${t.hub.url}/v1/jobs`, { headers: { cookie } })).status).toBe(401);
  });
});

describe('GET /v1/stats', () => {
  it("counts the caller's own ended jobs, their success rate and durations", async () => {
    const dave = await principal('dave');
    for (const run of ['true', 'exit 3']) {
      await collect(dave.client, (await dave.client.createJob({ run })).id);
    }
    const stats = (await (await dave.client.raw('GET', '/v1/stats?hours=2')).json()) as {
      hours: number;
      jobsPerHour: Array<{ ended: number }>;
      profiles: Array<Record<string, unknown>>;
    };
    expect(stats.hours).toBe(2);
    expect(stats.jobsPerHour.reduce((n, h) => n + h.ended, 0)).toBe(2);
    expect(stats.profiles).toEqual([expect.objectContaining({ profile: 'default', ended: 2, succeeded: 1, successRate: 0.5 })]);
    expect(stats.profiles[0]!.durationP95).toEqual(expect.any(Number));
    expect((await dave.client.raw('GET', '/v1/stats?hours=0')).status).toBe(400);
  });
});

describe('GET /v1/live', () => {
  it('holds at most DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL (32) streams per principal, and a stream the client drops is let go', async () => {
    const erin = await principal('erin');
    const open = () => {
      const stop = new AbortController();
      return fetch(`${t.hub.url}/v1/live`, { headers: { authorization: `Bearer ${erin.token}` }, signal: stop.signal }).then((res) => ({ res, stop }));
    };
    const streams = await Promise.all(Array.from({ length: MAX_LIVE_PER_PRINCIPAL }, open));
    expect(streams.map((s) => s.res.status)).toEqual(Array(MAX_LIVE_PER_PRINCIPAL).fill(200));
    const over = await open();
    expect(over.res.status).toBe(429);
    expect(((await over.res.json()) as { error: { message: string } }).error.message).toMatch(/DOCKER_AGENT_MAX_STREAMS_PER_PRINCIPAL=32/);
    // Another principal is not held back by erin's.
    const other = await fetch(`${t.hub.url}/v1/live`, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(other.status).toBe(200);
    await other.body?.cancel();
    for (const s of streams) s.stop.abort();
    // Dropped streams are noticed and let go: one more opens.
    await expect
      .poll(
        async () => {
          const next = await open();
          next.stop.abort();
          return next.res.status;
        },
        { timeout: 10_000 },
      )
      .toBe(200);
  });
});

describe('the session cookie against other sites', () => {
  let cookie: string;
  let csrf: string;
  beforeAll(async () => {
    const res = await fetch(`${t.hub.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: alice.token }),
    });
    expect(res.status).toBe(201);
    cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
    csrf = ((await res.json()) as { csrf: string }).csrf;
  });

  it('refuses a state-changing request without the CSRF token, or from another origin', async () => {
    const submit = (headers: Record<string, string>) =>
      fetch(`${t.hub.url}/v1/jobs`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ run: 'true' }),
      });
    const bare = await submit({});
    expect(bare.status).toBe(403);
    expect(((await bare.json()) as { error: { code: string } }).error.code).toBe('CROSS_SITE');
    expect((await submit({ 'x-csrf-token': 'wrong' })).status).toBe(403);
    expect((await submit({ 'x-csrf-token': csrf, origin: 'http://evil.example' })).status).toBe(403);
    const ok = await submit({ 'x-csrf-token': csrf, origin: t.hub.url });
    expect(ok.status).toBe(201);
  });

  it('refuses a request a sibling page of the same site makes with the cookie (Sec-Fetch-Site)', async () => {
    const read = (site: string) => fetch(`${t.hub.url}/v1/jobs`, { headers: { cookie, 'sec-fetch-site': site } });
    expect((await read('same-site')).status).toBe(403);
    expect((await read('cross-site')).status).toBe(403);
    expect((await read('same-origin')).status).toBe(200);
    expect((await read('none')).status).toBe(200);
  });

  it('trusts no session when a second cookie of its name was planted', async () => {
    const res = await fetch(`${t.hub.url}/v1/jobs`, { headers: { cookie: `${SESSION_COOKIE}=das_planted; ${cookie}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/more than one/);
  });

  it('ends the session a browser had when it signs in again', async () => {
    const first = await fetch(`${t.hub.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: alice.token }),
    });
    const old = first.headers.getSetCookie()[0]!.split(';')[0]!;
    const again = await fetch(`${t.hub.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: old },
      body: JSON.stringify({ token: alice.token }),
    });
    expect(again.status).toBe(201);
    expect((await fetch(`${t.hub.url}/v1/jobs`, { headers: { cookie: old } })).status).toBe(401);
    expect((await fetch(`${t.hub.url}/v1/jobs`, { headers: { cookie: again.headers.getSetCookie()[0]!.split(';')[0]! } })).status).toBe(200);
  });

  it('answers HEAD on the streaming routes without holding a stream', async () => {
    for (let i = 0; i < MAX_LIVE_PER_PRINCIPAL + 4; i++) {
      expect((await fetch(`${t.hub.url}/v1/live`, { method: 'HEAD', headers: { cookie } })).status).toBe(200);
    }
    const live = await fetch(`${t.hub.url}/v1/live`, { headers: { cookie } });
    expect(live.status).toBe(200);
    await live.body?.cancel();
  });

  it('refuses a sign-in posted by another site', async () => {
    const res = await fetch(`${t.hub.url}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ token: alice.token }),
    });
    expect(res.status).toBe(403);
  });

  it("refuses a WebSocket opened with the cookie from another site's page", async () => {
    const job = await alice.client.createJob({ run: 'true' });
    const url = `${t.hub.url.replace(/^http/, 'ws')}/v1/jobs/${job.id}/events`;
    const status = (origin: string) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(url, { headers: { cookie, origin } });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('error', () => resolve(-1));
      });
    expect(await status('http://evil.example')).toBe(403);
    expect(await status(t.hub.url)).toBe(101);
  });

  it('serves the first load (page, script, styles) under 500 KB compressed', async () => {
    const size = (path: string) =>
      new Promise<number>((resolve, reject) => {
        http.get(`${t.hub.url}${path}`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () =>
            res.statusCode === 200 && res.headers['content-encoding'] === 'gzip' ? resolve(n) : reject(new Error(`${path}: ${res.statusCode}`)),
          );
        });
      });
    const total = (await Promise.all(['/', '/ui/app.js', '/ui/app.css'].map(size))).reduce((a, b) => a + b, 0);
    expect(total).toBeLessThan(500 * 1024);
  });
});
