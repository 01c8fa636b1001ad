// The helper ships no typings: the part of its API our tests use.
declare module 'node-red-node-test-helper' {
  import type { EventEmitter } from 'node:events';
  interface TestNode extends EventEmitter {
    id: string;
    receive(msg: Record<string, unknown>): void;
    error: (...args: unknown[]) => void;
    status: (...args: unknown[]) => void;
  }
  interface Helper {
    init(nodeRedRuntime: string, userSettings?: Record<string, unknown>): void;
    load(
      nodes: unknown,
      flow: Record<string, unknown>[],
      credentials?: Record<string, unknown>,
      cb?: () => void,
    ): Promise<void>;
    unload(): Promise<void>;
    getNode(id: string): TestNode;
    startServer(done: () => void): void;
    stopServer(done: () => void): void;
    settings(userSettings: Record<string, unknown>): void;
  }
  const helper: Helper;
  export = helper;
}
