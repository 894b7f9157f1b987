import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderTemplate, TemplateError, TemplateFailure } from './chartRenderer.js';

// The render checks are only as good as the renderer; these pin the Go template behaviour the
// chart relies on.
describe('the chart renderer', () => {
  test('trims whitespace on the side of a dash, as Go templates do', () => {
    assert.equal(renderTemplate('a:\n  {{- " b" }}\nc: {{ 1 -}}  \n  d', {}), 'a: b\nc: 1d');
  });

  test('passes a pipeline\'s value as the last argument of the next function', () => {
    assert.equal(renderTemplate('{{ "abc-" | trimSuffix "-" | printf "%s/%s" "x" }}', {}), 'x/abc');
    assert.equal(renderTemplate('{{ .a | default "fallback" | quote }}', { a: '' }), '"fallback"');
  });

  test('walks a map in key order and takes the else branch of an empty range', () => {
    assert.equal(renderTemplate('{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}', { m: { b: 2, a: 1 } }), 'a=1;b=2;');
    assert.equal(renderTemplate('{{ range .l }}x{{ else }}none{{ end }}', { l: [] }), 'none');
  });

  test('prints a missing key as nothing but fails on a field of a missing value', () => {
    assert.equal(renderTemplate('[{{ .Values.missing }}]', { Values: {} }), '[]');
    assert.throws(() => renderTemplate('{{ .Values.missing.deeper }}', { Values: {} }), TemplateError);
  });

  test('evaluates and/or only as far as needed', () => {
    assert.equal(renderTemplate('{{ if and .a .a.b }}yes{{ else }}no{{ end }}', {}), 'no');
    assert.equal(renderTemplate('{{ if or .x .a.b }}yes{{ end }}', { x: true }), 'yes');
  });

  test('renders defines through include, with variables assigned across a range', () => {
    const helpers = '{{- define "sum" -}}{{- $total := 0 }}{{- range . }}{{- $total = add $total . }}{{- end }}{{- $total }}{{- end }}';
    assert.equal(renderTemplate('{{ include "sum" .n | nindent 2 }}', { n: [1, 2, 3] }, helpers), '\n  6');
  });

  test('builds maps with dict and set and prints them only through toYaml', () => {
    assert.equal(renderTemplate('{{- $m := dict "b" 1 }}{{- $_ := set $m "a" (list "x") }}{{ toYaml $m }}', {}), 'b: 1\na:\n  - x');
    assert.throws(() => renderTemplate('{{ dict "a" 1 }}', {}), TemplateError);
  });

  test('stops with the message of fail and required', () => {
    assert.throws(() => renderTemplate('{{ fail "no way" }}', {}), (err: Error) => err instanceof TemplateFailure && err.message === 'no way');
    assert.throws(() => renderTemplate('{{ required "name is required" .name }}', {}), TemplateFailure);
  });

  test('refuses a function outside the subset instead of guessing', () => {
    assert.throws(() => renderTemplate('{{ lookup "v1" "Secret" "ns" "name" }}', {}), /outside the supported subset/);
  });
});
