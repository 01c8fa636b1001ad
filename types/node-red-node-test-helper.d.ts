// node-red-node-test-helper ships no typings: the part of its API our tests use (one copy for all workspaces).
declare module 'node-red-node-test-helper' {
  import type { EventEmitter } from 'node:events';
  interface TestNode extends EventEmitter {
    id: string;
    type: string;
    receive(msg: Record<string, unknown>): void;
  }
  interface Helper {
    init(nodeRedRuntime: string, userSettings?: Record<string, unknown>): void;
    load(
      nodes: unknown,
      flow: Record<string, unknown>[],
      credentials?: Record<string, unknown>,
    ): Promise<void>;
    /** Merge settings into the runtime's (RED.settings), e.g. userDir. */
    settings(userSettings: Record<string, unknown>): Record<string, unknown>;
    unload(): Promise<void>;
    getNode(id: string): TestNode | null;
    startServer(done: () => void): void;
    stopServer(done: () => void): void;
  }
  const helper: Helper;
  export = helper;
}
