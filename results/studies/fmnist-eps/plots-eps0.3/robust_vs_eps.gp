# regmix report: robust_vs_eps; run `gnuplot robust_vs_eps.gp` in this folder
set encoding utf8
set datafile missing 'NaN'
set grid
set title 'robust accuracy against the test budget'
set terminal pngcairo size 960,600 noenhanced
set output 'robust_vs_eps.png'
set key outside right top
set xlabel 'test eps'
set ylabel 'final_pgd20 accuracy (%)'
set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05
plot \
  'robust_vs_eps.dat' index 0 using 2:3 with linespoints lt 1 title 'method=fgsm-rs,reg=none', \
  'robust_vs_eps.dat' index 0 using 2:3:4 with yerrorbars lt 1 notitle, \
  'robust_vs_eps.dat' index 1 using 2:3 with linespoints lt 2 title 'method=pgd-at,reg=none', \
  'robust_vs_eps.dat' index 1 using 2:3:4 with yerrorbars lt 2 notitle, \
  'robust_vs_eps.dat' index 2 using 2:3 with linespoints lt 3 title 'method=pgi,reg=mse', \
  'robust_vs_eps.dat' index 2 using 2:3:4 with yerrorbars lt 3 notitle, \
  'robust_vs_eps.dat' index 3 using 2:3 with linespoints lt 4 title 'method=pgi,reg=none', \
  'robust_vs_eps.dat' index 3 using 2:3:4 with yerrorbars lt 4 notitle, \
  'robust_vs_eps.dat' index 4 using 2:3 with linespoints lt 5 title 'method=pgi,reg=regmix', \
  'robust_vs_eps.dat' index 4 using 2:3:4 with yerrorbars lt 5 notitle, \
  'robust_vs_eps.dat' index 5 using 2:3 with linespoints lt 6 title 'method=pgk,reg=mse', \
  'robust_vs_eps.dat' index 5 using 2:3:4 with yerrorbars lt 6 notitle, \
  'robust_vs_eps.dat' index 6 using 2:3 with linespoints lt 7 title 'method=pgk,reg=regmix', \
  'robust_vs_eps.dat' index 6 using 2:3:4 with yerrorbars lt 7 notitle
set terminal svg size 960,600 noenhanced
set output 'robust_vs_eps.svg'
replot
unset output
