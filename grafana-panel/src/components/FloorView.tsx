import React, { useEffect, useRef } from 'react';
import { useTheme2 } from '@grafana/ui';
import type { GrafanaTheme2 } from '@grafana/data';
import type { AssetView } from '../model/assets';
import { FloorScene, type FloorStyle } from '../render/floor';
import type { Shape } from '../types';
import pluginJson from '../plugin.json';

interface Props {
  assets: AssetView[];
  labelText: (a: AssetView) => string[];
  models: Record<Shape, string>;
  width: number;
  height: number;
  onClick: (a: AssetView) => void;
  onHover: (a: AssetView | null, x: number, y: number) => void;
  onProblem: (text: string | null) => void;
}

export function floorStyle(theme: GrafanaTheme2): FloorStyle {
  const dark = theme.isDark;
  return {
    background: theme.colors.background.primary,
    floor: dark ? '#23262d' : '#e9ecf1',
    grid: dark ? '#3a3f4a' : '#c3c9d3',
    body: dark ? '#b9c0ca' : '#d5dae1',
    dark: dark ? '#3b4048' : '#5a616b',
    glass: dark ? '#5d87b0' : '#7fa6cc',
    labelBg: dark ? 'rgba(24,27,31,0.85)' : 'rgba(255,255,255,0.9)',
    labelText: theme.colors.text.primary,
    labelBorder: theme.colors.border.weak,
    fontFamily: theme.typography.fontFamily,
    color: (name) => theme.visualization.getColorByName(name),
  };
}

/** Owns one FloorScene for its lifetime; props flow into it, it is disposed on unmount. */
export const FloorView: React.FC<Props> = ({
  assets,
  labelText,
  models,
  width,
  height,
  onClick,
  onHover,
  onProblem,
}) => {
  const theme = useTheme2();
  const ref = useRef<HTMLDivElement>(null);
  const scene = useRef<FloorScene | null>(null);
  const handlers = useRef({ onClick, onHover, onProblem });
  handlers.current = { onClick, onHover, onProblem };

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    let s: FloorScene;
    try {
      s = new FloorScene(
        el,
        floorStyle(theme),
        {
          onClick: (a) => handlers.current.onClick(a),
          onHover: (a, x, y) => handlers.current.onHover(a, x, y),
          onProblem: (t) => handlers.current.onProblem(t),
        },
        models,
        `public/plugins/${pluginJson.id}/`,
      );
    } catch (e) {
      handlers.current.onProblem(
        `3D view unavailable (WebGL): ${e instanceof Error ? e.message : String(e)}`,
      );
      return;
    }
    scene.current = s;
    return () => {
      s.dispose();
      scene.current = null;
    };
    // The scene lives as long as the panel; later prop changes reach it through the effects below.
  }, []);

  useEffect(() => scene.current?.resize(width, height), [width, height]);
  useEffect(() => scene.current?.setStyle(floorStyle(theme)), [theme]);
  useEffect(() => scene.current?.setModelUrls(models), [models]);
  useEffect(() => scene.current?.setAssets(assets, labelText), [assets, labelText]);

  return <div ref={ref} style={{ position: 'absolute', inset: 0 }} data-testid="evtwin-floor" />;
};
