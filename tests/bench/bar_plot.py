"""Paired bars with min-max whiskers, drawn by gnuplot: the plot of
compare.py and linux_boot.py."""
import shutil
import subprocess


def paired_bars(png, rows, title, labels, size="1100,560"):
    """rows: (name, (median, min, max), (median, min, max)); labels: the two
    bars' legend entries. Writes PNG beside a .dat file; returns an error
    message, or None."""
    if not shutil.which("gnuplot"):
        return "gnuplot is missing"
    data = png[:-len(".png")] + ".dat"
    with open(data, "w") as f:
        for name, a, b in rows:
            f.write(f'"{name}" {a[0]} {a[1]} {a[2]} {b[0]} {b[1]} {b[2]}\n')
    script = f"""
set terminal pngcairo size {size} font ',10'
set output '{png}'
set title '{title}'
set style fill solid 0.75 border -1
set boxwidth 0.9
set ylabel 'ms'
set yrange [0:*]
set xrange [-1:*]
set key top left
set grid ytics
set bmargin 5
plot '{data}' using ($0*3):2 with boxes lc rgb '#4c72b0' title "{labels[0]}", \\
     '' using ($0*3):2:3:4 with yerrorbars lc rgb 'black' pt -1 notitle, \\
     '' using ($0*3+1):5 with boxes lc rgb '#dd8452' title "{labels[1]}", \\
     '' using ($0*3+1):5:6:7 with yerrorbars lc rgb 'black' pt -1 notitle, \\
     '' using ($0*3+0.5):(1/0):xtic(1) notitle
"""
    p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    return f"gnuplot failed: {p.stderr}" if p.returncode != 0 else None
