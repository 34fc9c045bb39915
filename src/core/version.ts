// The version of this exitnode and which versions talk to each other. Every request of the client
// (CLI, agent, simulated farm) carries its version in the x-exitnode-version header; the server
// answers every request with its own there and refuses a client of another major version
// (VERSION_MISMATCH). Semantic versioning: a major version may change the API or the view.
// VERSION is package.json's version, written here so that core stays free of I/O; a unit test
// (version.test.ts) fails when the two disagree, so a release bumps both (see CHANGELOG.md).

export const VERSION = '0.1.0';

/** The HTTP header, request and response, that carries a side's version. */
export const VERSION_HEADER = 'x-exitnode-version';

/** The major version of "MAJOR.MINOR.PATCH[-pre][+build]", or undefined when `v` is not one. */
export function majorOf(v: string): number | undefined {
  const m = /^(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:[-+][0-9A-Za-z.+-]{0,64})?$/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/** Whether a client of version `client` and a server of version `server` talk to each other. */
export function compatible(client: string, server: string): boolean {
  const a = majorOf(client);
  return a !== undefined && a === majorOf(server);
}
