import React, { type ChangeEvent } from 'react';
import type { QueryEditorProps } from '@grafana/data';
import { InlineField, InlineFieldRow, Input, RadioButtonGroup } from '@grafana/ui';
import type { DataSource } from '../datasource';
import type { EvtwinOptions, EvtwinQuery, EvtwinVariableQuery, VariableTarget } from '../types';

type Props = QueryEditorProps<DataSource, EvtwinQuery, EvtwinOptions, EvtwinVariableQuery>;

const TARGETS: { value: VariableTarget; label: string }[] = [
  { value: 'site', label: 'Sites' },
  { value: 'line', label: 'Lines' },
  { value: 'asset', label: 'Assets' },
  { value: 'metric', label: 'Metrics' },
];

/** A site/line/asset/metric variable, narrowed by other variables (e.g. assets of `$site`). */
export function VariableQueryEditor({ query, onChange }: Props) {
  // Grafana hands a new variable an empty query (or a legacy string): start from a site list.
  const q: EvtwinVariableQuery =
    typeof query === 'object' && query !== null && 'target' in query
      ? query
      : { refId: 'EvtwinVariableQuery', target: 'site' };
  const update = (patch: Partial<EvtwinVariableQuery>) => onChange({ ...q, ...patch });
  const text = (field: 'site' | 'line' | 'kind') => ({
    value: q[field] ?? '',
    onChange: (e: ChangeEvent<HTMLInputElement>) => update({ [field]: e.target.value || undefined }),
  });
  return (
    <>
      <InlineFieldRow>
        <InlineField label="Values" labelWidth={14}>
          <RadioButtonGroup options={TARGETS} value={q.target} onChange={(target) => update({ target })} />
        </InlineField>
      </InlineFieldRow>
      {q.target !== 'site' && (
        <InlineFieldRow>
          <InlineField label="Site" labelWidth={14} tooltip="Narrow to a site, e.g. $site">
            <Input aria-label="Site" width={20} placeholder="all" {...text('site')} />
          </InlineField>
          {q.target !== 'line' && (
            <>
              <InlineField label="Line" tooltip="Narrow to a line, e.g. $line">
                <Input aria-label="Line" width={20} placeholder="all" {...text('line')} />
              </InlineField>
              <InlineField label="Kind" tooltip="Narrow to an asset kind, e.g. charger">
                <Input aria-label="Kind" width={20} placeholder="all" {...text('kind')} />
              </InlineField>
            </>
          )}
        </InlineFieldRow>
      )}
      {q.target === 'asset' && (
        <InlineFieldRow>
          <InlineField
            label="Value"
            labelWidth={14}
            tooltip="The asset id (with a $site variable, what the asset dashboard takes) or site/asset"
          >
            <RadioButtonGroup<'id' | 'ref'>
              options={[
                { value: 'id', label: 'asset id' },
                { value: 'ref', label: 'site/asset' },
              ]}
              value={q.valueAs ?? 'id'}
              onChange={(valueAs) => update({ valueAs })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
    </>
  );
}
