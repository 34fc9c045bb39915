// Where a command writes. Commands take an Io so that tests can run them in-process.
// Nothing from a server reaches the terminal raw: clean() escapes a value (a name, a health
// reason, a server's message) so that it stays on its line and sends no escape sequence; the
// process's own streams escape what is left (processIo), keeping the newlines commands write.
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

// C0 (with CR, LF and tab), DEL, C1, line/paragraph separators, bidirectional overrides and isolates.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** A value for one line of output: every control character as \uXXXX (also valid inside JSON strings). */
export function clean(value: unknown): string {
  return String(value).replace(CONTROL, escape);
}

/** Text of several lines: control characters escaped, newlines and tabs kept. */
export function cleanText(text: string): string {
  return text.replace(CONTROL_BUT_LINES, escape);
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(cleanText(t.endsWith('\n') ? t : `${t}\n`)),
  err: (t) => void process.stderr.write(cleanText(t.endsWith('\n') ? t : `${t}\n`)),
};

/** A command module: src/cli/commands/<name>.ts, found by its file name. */
export interface CommandModule {
  summary: string;
  usage: string;
  run(argv: string[], io: Io): Promise<number>;
}
