/**
 * A closed-loop HTTP load generator on Yakima's virtual switch (`denali swap-bench`, HotOS
 * paper 3.2 Figure 3): `HttpLoadGenerator` picks targets uniformly or by Zipf(α)
 * (`createPicker`) and fetches one document per TCP connection through the user-space TCP of
 * a `VirtualHost`.
 */
export * from './request-picker.js';
export * from './http-response.js';
export * from './load-generator.js';
