import React, { type ChangeEvent } from 'react';
import type { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { Alert, Field, FieldSet, Input, SecretInput } from '@grafana/ui';
import type { EvtwinOptions, EvtwinSecureJsonData } from '../types';

type Props = DataSourcePluginOptionsEditorProps<EvtwinOptions, EvtwinSecureJsonData>;

/** Node-RED's base URL: trimmed of trailing slashes (the route appends /evtwin/api/v1). */
export const normaliseUrl = (v: string): string => v.trim().replace(/\/+$/, '');

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields, secureJsonData } = options;

  const setUrl = (url: string) => onOptionsChange({ ...options, jsonData: { ...jsonData, url } });
  // Trimmed on blur, not while typing ("http:/" is on its way to "http://").
  const onUrlChange = (e: ChangeEvent<HTMLInputElement>) => setUrl(e.target.value);
  const onUrlBlur = () => {
    const url = normaliseUrl(jsonData.url ?? '');
    if (url !== jsonData.url) setUrl(url);
  };

  const onTokenChange = (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, serviceToken: e.target.value } });

  const onTokenReset = () =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, serviceToken: false },
      secureJsonData: { ...secureJsonData, serviceToken: '' },
    });

  return (
    <>
      <FieldSet label="EVTwin API">
        <Field
          label="URL"
          description="Node-RED's base URL as Grafana's server reaches it; the API lives under /evtwin/api/v1."
          required
        >
          <Input
            id="evtwin-config-url"
            value={jsonData.url ?? ''}
            placeholder="http://node-red:1880"
            width={48}
            onChange={onUrlChange}
            onBlur={onUrlBlur}
          />
        </Field>
        <Field
          label="Service token"
          description="The evtwin-api node's service token. Grafana's server keeps it and adds it to every API call; browsers never see it."
          required
        >
          <SecretInput
            id="evtwin-config-service-token"
            isConfigured={Boolean(secureJsonFields?.serviceToken)}
            value={secureJsonData?.serviceToken ?? ''}
            placeholder="service token"
            width={48}
            onReset={onTokenReset}
            onChange={onTokenChange}
          />
        </Field>
      </FieldSet>
      <Alert title="Per-user scoping needs the Grafana user header" severity="info">
        The API answers each viewer with what their EVTwin role and scope allow. It learns who is viewing from
        the <code>X-Grafana-User</code> header, which Grafana sends only with{' '}
        <code>[dataproxy] send_user_header = true</code> in grafana.ini (or{' '}
        <code>GF_DATAPROXY_SEND_USER_HEADER=true</code>). Grafana logins must match the logins of users.yaml.
        Save &amp; test reports the token and the user the API sees.
      </Alert>
    </>
  );
}
