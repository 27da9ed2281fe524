# regmix report: accuracy_vs_epoch; run `gnuplot accuracy_vs_epoch.gp` in this folder
set encoding utf8
set datafile missing 'NaN'
set grid
set title 'mean test accuracy over each group''s runs'
set terminal pngcairo size 960,600 noenhanced
set output 'accuracy_vs_epoch.png'
set key outside right top
set xlabel 'epoch'
set ylabel 'test accuracy (%)'
set xtics 1
set offsets graph 0.02, graph 0.02, graph 0.02, graph 0.02
plot \
  'accuracy_vs_epoch.dat' index 0 using 1:2 with linespoints lt 1 dt 1 title 'method=fgsm-rs,reg=none clean', \
  'accuracy_vs_epoch.dat' index 0 using 1:5 with linespoints lt 1 dt 2 title 'method=fgsm-rs,reg=none pgd10', \
  'accuracy_vs_epoch.dat' index 1 using 1:2 with linespoints lt 2 dt 1 title 'method=pgd-at,reg=none clean', \
  'accuracy_vs_epoch.dat' index 1 using 1:5 with linespoints lt 2 dt 2 title 'method=pgd-at,reg=none pgd10', \
  'accuracy_vs_epoch.dat' index 2 using 1:2 with linespoints lt 3 dt 1 title 'method=pgi,reg=mse clean', \
  'accuracy_vs_epoch.dat' index 2 using 1:5 with linespoints lt 3 dt 2 title 'method=pgi,reg=mse pgd10', \
  'accuracy_vs_epoch.dat' index 3 using 1:2 with linespoints lt 4 dt 1 title 'method=pgi,reg=none clean', \
  'accuracy_vs_epoch.dat' index 3 using 1:5 with linespoints lt 4 dt 2 title 'method=pgi,reg=none pgd10', \
  'accuracy_vs_epoch.dat' index 4 using 1:2 with linespoints lt 5 dt 1 title 'method=pgi,reg=regmix clean', \
  'accuracy_vs_epoch.dat' index 4 using 1:5 with linespoints lt 5 dt 2 title 'method=pgi,reg=regmix pgd10', \
  'accuracy_vs_epoch.dat' index 5 using 1:2 with linespoints lt 6 dt 1 title 'method=pgk,reg=mse clean', \
  'accuracy_vs_epoch.dat' index 5 using 1:5 with linespoints lt 6 dt 2 title 'method=pgk,reg=mse pgd10', \
  'accuracy_vs_epoch.dat' index 6 using 1:2 with linespoints lt 7 dt 1 title 'method=pgk,reg=regmix clean', \
  'accuracy_vs_epoch.dat' index 6 using 1:5 with linespoints lt 7 dt 2 title 'method=pgk,reg=regmix pgd10'
set terminal svg size 960,600 noenhanced
set output 'accuracy_vs_epoch.svg'
replot
unset output
