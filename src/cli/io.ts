// Where a command writes. Commands take an Io so that tests can run them in-process.
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => void process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

/** A command module: src/cli/commands/<name>.ts, found by its file name. */
export interface CommandModule {
  summary: string;
  usage: string;
  run(argv: string[], io: Io): Promise<number>;
}
