export async function topCommand(_i: string | undefined, _ms: number): Promise<number> { return 0; }
