import React, { useEffect, useMemo, useRef } from 'react';
import { css, keyframes } from '@emotion/css';
import type { GrafanaTheme2 } from '@grafana/data';
import { useStyles2, useTheme2 } from '@grafana/ui';
import 'leaflet/dist/leaflet.css';
import type { AssetView } from '../model/assets';
import { TwinMap, type MapStyle } from '../render/map';
import type { TwinOptions } from '../types';

interface Props {
  assets: AssetView[];
  options: TwinOptions;
  width: number;
  height: number;
  onClick: (a: AssetView) => void;
}

/** Owns one TwinMap (Leaflet) for its lifetime; removed on unmount. */
export const MapView: React.FC<Props> = ({ assets, options, width, height, onClick }) => {
  const theme = useTheme2();
  const styles = useStyles2(getStyles);
  const ref = useRef<HTMLDivElement>(null);
  const map = useRef<TwinMap | null>(null);
  const click = useRef(onClick);
  click.current = onClick;
  const mapOptions = useMemo(
    () => ({
      tileUrl: options.tileUrl,
      attribution: options.tileAttribution,
      maxZoom: options.maxZoom,
      clusterRadius: options.clusterRadius,
    }),
    [options.tileUrl, options.tileAttribution, options.maxZoom, options.clusterRadius],
  );
  const style: MapStyle = useMemo(
    () => ({
      color: (name: string) => theme.visualization.getColorByName(name),
      marker: styles.marker,
      cluster: styles.cluster,
      pulse: styles.pulse,
      popup: styles.popup,
    }),
    [theme, styles],
  );

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const m = new TwinMap(el, style, { onClick: (a) => click.current(a) }, mapOptions);
    map.current = m;
    return () => {
      m.dispose();
      map.current = null;
    };
    // One map per panel; options, style and data reach it through the effects below.
  }, []);

  useEffect(() => map.current?.resize(), [width, height]);
  useEffect(() => map.current?.setOptions(mapOptions), [mapOptions]);
  useEffect(() => map.current?.setStyle(style), [style]);
  useEffect(() => map.current?.setAssets(assets), [assets]);

  return <div ref={ref} className={styles.map} data-testid="evtwin-map" />;
};

const ping = keyframes({
  '0%': { boxShadow: '0 0 0 0 var(--pulse)' },
  '70%': { boxShadow: '0 0 0 12px transparent' },
  '100%': { boxShadow: '0 0 0 0 transparent' },
});

const getStyles = (theme: GrafanaTheme2) => ({
  map: css({
    position: 'absolute',
    inset: 0,
    background: theme.isDark ? '#1d2026' : '#eef0f3',
    '.leaflet-control-attribution': {
      background: theme.isDark ? 'rgba(24,27,31,0.75)' : 'rgba(255,255,255,0.8)',
      color: theme.colors.text.secondary,
      a: { color: theme.colors.text.link },
    },
    '.leaflet-bar a': {
      background: theme.colors.background.secondary,
      color: theme.colors.text.primary,
      borderColor: theme.colors.border.weak,
    },
  }),
  marker: css({
    width: 16,
    height: 16,
    boxSizing: 'border-box',
    borderRadius: '50%',
    border: `2px solid ${theme.isDark ? '#111217' : '#ffffff'}`,
    boxShadow: '0 1px 3px rgba(0,0,0,0.5)',
    cursor: 'pointer',
  }),
  cluster: css({
    boxSizing: 'border-box',
    display: 'flex',
    alignItems: 'center',
    justifyContent: 'center',
    borderRadius: '50%',
    border: '3px solid',
    background: theme.isDark ? 'rgba(17,18,23,0.85)' : 'rgba(255,255,255,0.92)',
    color: theme.colors.text.primary,
    fontSize: 12,
    cursor: 'pointer',
    boxShadow: '0 1px 4px rgba(0,0,0,0.45)',
    span: { display: 'none' },
  }),
  pulse: css({ animation: `${ping} 1.4s ease-out infinite` }),
  popup: css({
    '.leaflet-popup-content-wrapper, .leaflet-popup-tip': {
      background: theme.colors.background.elevated ?? theme.colors.background.primary,
      color: theme.colors.text.primary,
      boxShadow: theme.shadows.z3,
    },
    '.leaflet-popup-content': {
      margin: theme.spacing(1, 1.5),
      fontSize: theme.typography.bodySmall.fontSize,
    },
    '.title': { fontWeight: theme.typography.fontWeightMedium, marginBottom: 4 },
    '.title span': { display: 'inline-block', width: 10, height: 10, borderRadius: '50%', marginRight: 6 },
    th: { textAlign: 'left', fontWeight: 'normal', color: theme.colors.text.secondary, paddingRight: 8 },
  }),
});
