# regmix report: co_flags; run `gnuplot co_flags.gp` in this folder
set encoding utf8
set datafile missing 'NaN'
set grid
set title 'catastrophic overfitting: share of runs flagged (label: flagged/runs, first epoch)'
set terminal pngcairo size 960,600 noenhanced
set output 'co_flags.png'
set style fill solid 0.6 border -1
set boxwidth 0.7
set yrange [0:119]
set ylabel 'runs flagged (%)'
set xrange [-0.6:6.6]
set xtics rotate by -40 left
set bmargin 12
unset key
plot 'co_flags.dat' using 1:2:xticlabels(6) with boxes lt 1, \
  '' using 1:2:(sprintf('%d/%d%s', $3, $4, $5 > 0 ? sprintf(', ep %d', $5) : '')) with labels offset 0,1
set terminal svg size 960,600 noenhanced
set output 'co_flags.svg'
replot
unset output
