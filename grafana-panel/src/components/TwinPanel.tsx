import React, { useCallback, useMemo, useState } from 'react';
import { css } from '@emotion/css';
import { type GrafanaTheme2, type PanelProps } from '@grafana/data';
import { locationService } from '@grafana/runtime';
import { useStyles2, useTheme2 } from '@grafana/ui';
import { buildModel, type AssetView } from '../model/assets';
import { detailRows, labelValues } from '../model/format';
import type { TwinOptions } from '../types';
import { FloorView } from './FloorView';
import { MapView } from './MapView';

type Props = PanelProps<TwinOptions>;

/** Where a data link or the variable click leads; Grafana's own links win when it resolved them. */
function linkOf(a: AssetView, replace: Props['replaceVariables']): string | undefined {
  const src = a.source;
  if (!src) return undefined;
  for (const f of src.frame.fields) {
    const links = f.getLinks?.({ valueRowIndex: src.row }) ?? [];
    if (links[0]?.href) return links[0].href;
    const raw = f.config.links?.[0]?.url;
    if (raw) {
      return replace(raw, {
        asset: { text: a.id, value: a.id },
        site: { text: a.site ?? '', value: a.site ?? '' },
        ref: { text: a.key, value: a.key },
      });
    }
  }
  return undefined;
}

export const TwinPanel: React.FC<Props> = ({
  options,
  data,
  width,
  height,
  fieldConfig,
  replaceVariables,
}) => {
  const theme = useTheme2();
  const styles = useStyles2(getStyles);
  const [hover, setHover] = useState<{ a: AssetView; x: number; y: number } | null>(null);
  const [loadProblem, setLoadProblem] = useState<string | null>(null);

  const model = useMemo(
    () =>
      buildModel(data.series, {
        mapping: options.mapping,
        mode: options.mode,
        anomalyScore: options.anomalyScore,
        ...(fieldConfig.defaults.thresholds ? { thresholds: fieldConfig.defaults.thresholds } : {}),
      }),
    [data.series, options.mapping, options.mode, options.anomalyScore, fieldConfig.defaults.thresholds],
  );
  const labelText = useCallback(
    (a: AssetView): string[] => (options.showLabels ? labelValues(a, options.labelFields) : []),
    [options.showLabels, options.labelFields],
  );

  const onClick = useCallback(
    (a: AssetView) => {
      if (options.clickAction === 'variable' && options.variable) {
        const value = options.variableValue === 'ref' ? a.key : a.id;
        locationService.partial({ [`var-${options.variable}`]: value }, true);
      } else if (options.clickAction === 'link') {
        const href = linkOf(a, replaceVariables);
        if (!href) return;
        const url = new URL(href, window.location.href);
        // Grafana's own pages stay in the single-page app; other sites get a normal navigation.
        if (url.origin === window.location.origin) locationService.push(url.pathname + url.search + url.hash);
        else window.location.assign(url.href);
      }
    },
    [options.clickAction, options.variable, options.variableValue, replaceVariables],
  );
  const onHover = useCallback(
    (a: AssetView | null, x: number, y: number) => setHover(a ? { a, x, y } : null),
    [],
  );

  const errors = model.problems.filter((p) => p.severity === 'error');
  const hints = model.problems.filter((p) => p.severity === 'hint');
  if (loadProblem) hints.push({ severity: 'hint', text: loadProblem });

  if (errors.length > 0) {
    return (
      <div className={styles.message} style={{ width, height }} data-testid="evtwin-message">
        <div className={styles.messageTitle}>Nothing to draw yet</div>
        {errors.map((p) => (
          <p key={p.text}>{p.text}</p>
        ))}
        {hints.map((p) => (
          <p key={p.text} className={styles.hintText}>
            {p.text}
          </p>
        ))}
      </div>
    );
  }

  const color = (name: string): string => theme.visualization.getColorByName(name);
  return (
    <div
      className={styles.wrapper}
      style={{ width, height }}
      data-mode={options.mode}
      data-assets={model.assets.length}
    >
      {options.mode === 'map' ? (
        <MapView assets={model.assets} options={options} width={width} height={height} onClick={onClick} />
      ) : (
        <FloorView
          assets={model.assets}
          labelText={labelText}
          models={options.models}
          width={width}
          height={height}
          onClick={onClick}
          onHover={onHover}
          onProblem={setLoadProblem}
        />
      )}
      {options.showLegend && model.legend.length > 0 && (
        <div className={styles.legend} data-testid="evtwin-legend">
          {model.legend.map((l) => (
            <span key={l.label} className={styles.legendItem}>
              <i style={{ background: color(l.color) }} />
              {l.label}
            </span>
          ))}
          {model.assets.some((a) => a.anomaly) && (
            <span className={styles.legendItem}>
              <i className={styles.anomalyDot} style={{ borderColor: color('red') }} />
              anomaly
            </span>
          )}
        </div>
      )}
      {hints.length > 0 && (
        <div className={styles.hints} data-testid="evtwin-hints">
          {hints.map((p) => (
            <div key={p.text}>{p.text}</div>
          ))}
        </div>
      )}
      {hover && options.mode === '3d' && (
        <div
          className={styles.tooltip}
          style={{ left: hover.x + 14, top: hover.y + 14 }}
          data-testid="evtwin-tooltip"
        >
          <div className={styles.tooltipTitle}>
            <i style={{ background: color(hover.a.color) }} />
            {hover.a.name}
            {hover.a.anomaly ? ' · anomaly' : ''}
          </div>
          <table>
            <tbody>
              {detailRows(hover.a).map(([k, v]) => (
                <tr key={k}>
                  <th>{k}</th>
                  <td>{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
};

const getStyles = (theme: GrafanaTheme2) => ({
  wrapper: css({ position: 'relative', overflow: 'hidden' }),
  message: css({
    display: 'flex',
    flexDirection: 'column',
    justifyContent: 'center',
    alignItems: 'center',
    textAlign: 'center',
    padding: theme.spacing(2),
    color: theme.colors.text.secondary,
    overflow: 'auto',
    p: { maxWidth: 560, margin: theme.spacing(0.5, 0) },
  }),
  messageTitle: css({ ...theme.typography.h5, color: theme.colors.text.primary }),
  hintText: css({ fontSize: theme.typography.bodySmall.fontSize }),
  legend: css({
    position: 'absolute',
    left: theme.spacing(1),
    bottom: theme.spacing(1),
    display: 'flex',
    flexWrap: 'wrap',
    gap: theme.spacing(0.5, 1.5),
    padding: theme.spacing(0.5, 1),
    maxWidth: 'calc(100% - 16px)',
    background: theme.colors.background.secondary,
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
    fontSize: theme.typography.bodySmall.fontSize,
    color: theme.colors.text.primary,
    zIndex: 500,
    pointerEvents: 'none',
  }),
  legendItem: css({
    display: 'inline-flex',
    alignItems: 'center',
    gap: 4,
    i: { display: 'inline-block', width: 10, height: 10, borderRadius: '50%' },
  }),
  anomalyDot: css({ background: 'transparent !important', border: '2px solid' }),
  hints: css({
    position: 'absolute',
    top: theme.spacing(1),
    left: '50%',
    transform: 'translateX(-50%)',
    maxWidth: '80%',
    padding: theme.spacing(0.5, 1),
    background: theme.colors.background.secondary,
    border: `1px solid ${theme.colors.warning.border}`,
    borderRadius: theme.shape.radius.default,
    color: theme.colors.text.secondary,
    fontSize: theme.typography.bodySmall.fontSize,
    zIndex: 500,
    pointerEvents: 'none',
  }),
  tooltip: css({
    position: 'fixed',
    zIndex: 1000,
    pointerEvents: 'none',
    padding: theme.spacing(1),
    background: theme.colors.background.elevated ?? theme.colors.background.primary,
    boxShadow: theme.shadows.z3,
    border: `1px solid ${theme.colors.border.weak}`,
    borderRadius: theme.shape.radius.default,
    color: theme.colors.text.primary,
    fontSize: theme.typography.bodySmall.fontSize,
    th: {
      textAlign: 'left',
      fontWeight: 'normal',
      color: theme.colors.text.secondary,
      paddingRight: theme.spacing(1),
    },
  }),
  tooltipTitle: css({
    fontWeight: theme.typography.fontWeightMedium,
    marginBottom: 4,
    i: { display: 'inline-block', width: 10, height: 10, borderRadius: '50%', marginRight: 6 },
  }),
});
