// Interface-name rules. The name is copied into a shell script or a router configuration, so it
// is refused unless it is plainly a name on the target OS: nothing that could end a token, a
// quoted string or a line there (whitespace, quotes, backslashes, non-printable characters).
import { ExitnodeError, q } from '../core/index.js';
import { RenderErrors } from './errors.js';
import type { RouterOs, UpstreamModel } from './model.js';

export interface Renderer {
  os: RouterOs;
  /** What the output is, for the header ("an FRR frr.conf fragment"). */
  title: string;
  /** Throws UPSTREAM_IFACE_NAME unless `name` is a valid interface name for this OS. */
  checkIface(name: string): void;
  render(m: UpstreamModel): string;
}

export function ifaceError(os: RouterOs, name: string, rule: string): ExitnodeError {
  return new ExitnodeError(
    RenderErrors.UPSTREAM_IFACE_NAME,
    `interface name ${q(name)} is not valid for ${os}: ${rule}`,
  );
}

/** The rules every OS shares. `max` is the OS's length limit, or exitnode's own sanity limit. */
export function checkPrintable(os: RouterOs, name: string, max: number): void {
  if (name === '') throw ifaceError(os, name, 'it is empty');
  if (/[^\x21-\x7e]/.test(name))
    throw ifaceError(os, name, 'it contains whitespace or a character outside printable ASCII');
  if (/["'`\\]/.test(name)) throw ifaceError(os, name, 'it contains a quote or a backslash');
  if (name.length > max) throw ifaceError(os, name, `it is ${name.length} characters long; at most ${max} are allowed`);
}

/**
 * A Linux kernel interface name: at most 15 characters (IFNAMSIZ 16 with the NUL). The kernel
 * allows more characters than letters, digits, "_", "." and "-", but these are what real names
 * use and what stays one word in a shell script; a leading "-" would read as an option to ip.
 */
export function checkLinuxName(os: RouterOs, name: string): void {
  checkPrintable(os, name, 15);
  if (name === '.' || name === '..' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw ifaceError(
      os,
      name,
      'a Linux interface name is letters, digits, "_", "." and "-", starting with a letter or digit (at most 15 characters)',
    );
  }
}
