/**
 * What the harness page offers its drivers (tests, benchmark, preview) as `window.evtwin`: implemented by
 * host.tsx, imported (type only) by tools/. One definition for both sides.
 */
export interface HarnessFrame {
  name?: string;
  refId?: string;
  fields: Array<{
    name: string;
    type: string;
    values: unknown[];
    config?: object;
    labels?: Record<string, string>;
  }>;
}

export interface HarnessRenderRequest {
  frames: HarnessFrame[];
  options?: Record<string, unknown>;
  theme?: 'dark' | 'light';
  width?: number;
  height?: number;
}

export interface HarnessApi {
  /** Load /public/plugins/<id>/module.js as Grafana does and set plugin.meta from its plugin.json. */
  load(pluginId: string): Promise<{ defaults: unknown }>;
  render(req: HarnessRenderRequest): void;
  /** Re-render with new frames, keeping options and size (a dashboard refresh). */
  update(frames: HarnessFrame[]): void;
  unmount(): void;
  /** locationService's query parameters (variables set by clicks). */
  search(): Record<string, unknown>;
  /** The theme's colours for threshold names, and its panel background. */
  colors(theme: 'dark' | 'light'): Record<string, string>;
}

declare global {
  interface Window {
    evtwin: HarnessApi;
  }
}
