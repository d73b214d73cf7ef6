// Signs in to the hub: with the `token` input, or else with a GitHub OIDC ID token
// that the hub checks against GitHub's keys and its list of allowed repositories.
import * as core from '@actions/core';
import { HubClient } from '../client/index.js';
import { InputError, type HubSettings } from './inputs.js';

/** Seconds until a JWT's `exp`, or 0 when it cannot be read. */
function secondsLeft(jwt: string): number {
  try {
    const { exp } = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { exp?: number };
    return exp ? exp - Date.now() / 1000 : 0;
  } catch {
    return 0;
  }
}

export async function connectHub(settings: HubSettings): Promise<HubClient> {
  if (settings.token) {
    core.setSecret(settings.token);
    return new HubClient({ url: settings.hubUrl, token: settings.token });
  }
  let token = await idToken(settings);
  core.info(`docker-agent: signing in to the hub with a GitHub OIDC token for audience ${settings.audience}`);
  // GitHub's ID tokens live minutes; a job may run for hours, so each call gets a fresh one when needed.
  const current = async () => {
    if (secondsLeft(token) < 60) token = await idToken(settings);
    return token;
  };
  return new HubClient({ url: settings.hubUrl, token: current });
}

async function idToken(settings: HubSettings): Promise<string> {
  if (!process.env.ACTIONS_ID_TOKEN_REQUEST_URL) {
    throw new InputError(
      'token',
      process.env.ACT === 'true'
        ? 'is required under act, which gives no GitHub OIDC tokens'
        : 'is required unless the workflow grants `permissions: id-token: write`, so the action can sign in with a GitHub OIDC token',
    );
  }
  const token = await core.getIDToken(settings.audience);
  core.setSecret(token);
  return token;
}
