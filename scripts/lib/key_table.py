# Prints the README key table (Configuration, "Every other key") from ConfigKeys.java:
# python3 scripts/lib/key_table.py. ConfigKeysTest fails when a key of the table is missing from README.md.
import re
import os
src=open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../trainer-core/src/main/java/dev/sparksft/config/ConfigKeys.java')).read()
def jstr(expr):  # concatenated Java string literals
    return ''.join(bytes(m, 'utf-8').decode('unicode_escape') for m in re.findall(r'"((?:[^"\\]|\\.)*)"', expr))
consts={m.group(1): jstr(m.group(2)) for m in re.finditer(r'static final String (\w+) = (.*?);\n', src, re.S)}
body=src[src.index('static {'):]
rows=[]
for m in re.finditer(r'(noEffect|refuse)\((.*?)\);\n', body, re.S):
    kind, args = m.group(1), m.group(2)
    first = re.match(r'\s*([A-Z_]+)\s*,', args)
    if first and first.group(1) in consts:
        reason = consts[first.group(1)]; rest = args[first.end():]
    else:
        # reason = leading concatenated literals up to the first comma outside a string that is followed by a key literal
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"|(,)', args)
        reason=''; i=0
        while i < len(parts) and parts[i][1] != ',':
            reason += parts[i][0]; i+=1
        rest = ','.join(f'"{p[0]}"' for p in parts[i:] if p[1] != ',')
    keys=[k for k in re.findall(r'"((?:[^"\\]|\\.)*)"', rest)]
    if kind=='noEffect':
        cell=', '.join(f'`{k}`' for k in keys); beh='accepted, no effect'
    else:
        cell=', '.join(f'`{k.split(":")[0].strip()}` ({k.split(":",1)[1].strip()})' for k in keys); beh='refused unless the default (in brackets)'
    rows.append(f'| {cell} | {beh}: {reason} |')
print('\n'.join(rows))
