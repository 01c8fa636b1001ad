import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';
import type { DataSource } from '../datasource';
import type { EvtwinVariableQuery } from '../types';
import { VariableQueryEditor } from './VariableQueryEditor';

const renderEditor = (query: EvtwinVariableQuery | string, onChange = jest.fn()) => {
  render(
    <VariableQueryEditor
      datasource={{} as DataSource}
      query={query as EvtwinVariableQuery}
      onChange={onChange}
      onRunQuery={jest.fn()}
    />,
  );
  return onChange;
};

describe('VariableQueryEditor', () => {
  it('starts a new variable as a site list and switches to assets', () => {
    const onChange = renderEditor('');
    expect(screen.queryByLabelText('Site')).not.toBeInTheDocument();
    fireEvent.click(screen.getByLabelText('Assets'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'EvtwinVariableQuery', target: 'asset' });
  });

  it('narrows assets by other variables and chooses the value shape', () => {
    const onChange = renderEditor({ refId: 'V', target: 'asset', site: '$site' });
    expect(screen.getByLabelText('Site')).toHaveValue('$site');
    fireEvent.change(screen.getByLabelText('Line'), { target: { value: '$line' } });
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'V', target: 'asset', site: '$site', line: '$line' });
    fireEvent.click(screen.getByLabelText('site/asset'));
    expect(onChange).toHaveBeenLastCalledWith(expect.objectContaining({ valueAs: 'ref' }));
  });
});
