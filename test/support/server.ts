/** The node server (`npm start`) as a child process, for tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Everything printed so far, stdout and stderr together. */
  output(): string;
  /** Resolves with the match once the output matches; rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  /** Resolves with the exit code. */
  exited(): Promise<number>;
}

const running: ChildProcess[] = [];

/**
 * Kills every server still running (call it in afterEach): its whole process group, since
 * tsx runs the server in a child process that would outlive a killed tsx.
 */
export function stopServers(): void {
  for (const child of running.splice(0)) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group has exited already.
    }
  }
}

/** Starts `command` (by default the server from source, as `npm start` does) with `env` added. */
export function startServer(env: Record<string, string>, command = ['node_modules/.bin/tsx', 'functions/handlers/server.ts']): ServerProcess {
  const [program, ...args] = command;
  // Its own process group, so that stopServers can kill tsx and the server it starts together.
  const child = spawn(program as string, args, { env: { ...process.env, ...env }, detached: true });
  running.push(child);
  let out = '';
  const exit = once(child, 'exit').then(([code]) => code as number);
  const collect = (d: Buffer) => (out += d.toString());
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return {
    child,
    output: () => out,
    exited: () => exit,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(out);
          if (!match) return false;
          child.stdout.off('data', check);
          child.stderr.off('data', check);
          resolve(match);
          return true;
        };
        if (check()) return;
        child.stdout.on('data', check);
        child.stderr.on('data', check);
        void exit.then((code) => {
          if (!check()) reject(new Error(`the server exited (${code}) before printing ${pattern}:\n${out}`));
        });
      });
    },
  };
}

/** Starts the server on a free loopback port and resolves with its base URL once it listens. */
export async function listeningServer(env: Record<string, string>): Promise<{ server: ServerProcess; url: string }> {
  const server = startServer({ PORT: '0', HOST: '127.0.0.1', ...env });
  const [, url] = await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
  return { server, url: url as string };
}
