// Signs in to the hub: with the `token` input, or else with a GitHub OIDC ID token
// that the hub checks against GitHub's keys and its list of allowed repositories.
import * as core from '@actions/core';
import { HubClient } from '../client/index.js';
import { InputError, type HubSettings } from './inputs.js';

export async function connectHub(settings: HubSettings): Promise<HubClient> {
  let token = settings.token;
  if (!token) {
    if (!process.env.ACTIONS_ID_TOKEN_REQUEST_URL) {
      throw new InputError(
        'token',
        process.env.ACT === 'true'
          ? 'is required under act, which gives no GitHub OIDC tokens'
          : 'is required unless the workflow grants `permissions: id-token: write`, so the action can sign in with a GitHub OIDC token',
      );
    }
    token = await core.getIDToken(settings.audience);
    core.info(`docker-agent: signing in to the hub with a GitHub OIDC token for audience ${settings.audience}`);
  }
  core.setSecret(token);
  return new HubClient({ url: settings.hubUrl, token });
}
