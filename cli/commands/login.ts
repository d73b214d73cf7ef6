// `login`: checks a hub URL and token against the hub, then keeps them for the next commands.
import type { Command } from 'commander';
import { HubClient } from '../../client/index.js';
import type { Context } from '../context.js';
import { DEFAULT_URL, saveLogin } from '../settings.js';

export function registerLoginCommand(program: Command, ctx: Context): void {
  program
    .command('login')
    .description("check a hub's URL and token and save them in your config (mode 0600)")
    .option('-u, --url <url>', "the hub's URL", DEFAULT_URL)
    .requiredOption('-t, --token <token>', 'an API token of the hub')
    .addHelpText('after', '\nExample:\n  docker-agent login --url http://127.0.0.1:9091 --token "$(cat ~/.local/share/docker-agent/token)"')
    .action(async (o: { url: string; token: string }) => {
      // A wrong token or URL is found now, not at the next command.
      await new HubClient({ url: o.url, token: o.token }).listJobs({ limit: 1 });
      const file = saveLogin({ url: o.url, token: o.token }, ctx.env);
      ctx.out.line(`logged in to ${o.url} (saved in ${file})`);
    });
}
