! Lagrangian tracers through a decaying shock in pressed HMX, with the closure called every step
! from Fortran (module porous_closure over the C API; docs/capi.md).
!
! Build and run (README "Calling the closure from C or Fortran"):
!   gfortran -O2 -c $(python -m closure.capi --fortran-module)
!   gfortran -O2 examples/fortran/closure_tracers.f90 porous_closure.o \
!       $(python -m closure.capi --libs) -o closure_tracers
!   ./closure_tracers [--histories FILE] [--model DIR] [--record FILE] [--checkpoint FILE]
!
! Pressure histories: by default a row of n tracers that a shock reaches one after another, its
! peak decaying along the row (14 GPa at the first tracer to 4 GPa at the last, below the
! closure's envelope there: status 2), each history rising over three steps to the peak and
! relaxing after it. --histories FILE reads others instead, e.g. tracer histories of a macro run,
! as text: a line "n_cells n_steps", then one line per step "dt p_1 ... p_n" (s, Pa).
! Each step the closure gives every tracer its hotspot area fraction and MES-IG ignition rate;
! the program integrates the rate into a burned fraction, as a hydrocode's reaction progress
! would. --record FILE writes every step's inputs and answers (binary stream, int64 n_cells and
! n_steps, then per step dt, p(n), area(n), temperature(n), rate(n), uncertainty(n), status(n)
! as float64 / int32), which tests/test_capi.py replays through the Python API; --checkpoint FILE
! saves the closure state half way and continues from the file.
program closure_tracers
  use, intrinsic :: iso_c_binding, only: c_double, c_int32_t, c_int64_t
  use, intrinsic :: iso_fortran_env, only: error_unit, output_unit
  use porous_closure
  implicit none

  integer :: n = 48, n_steps = 240
  real(c_double), allocatable :: hist(:, :), dts(:)
  real(c_double), allocatable :: area(:), temp(:), rate(:), unc(:), burned(:)
  integer(c_int32_t), allocatable :: status(:)
  integer(c_int64_t), allocatable :: ids(:)
  character(len=1024) :: arg, hist_file, model_dir, record_file, ckpt_file
  type(closure_type) :: c
  integer :: i, k, ierr, rec
  logical :: recording

  hist_file = ''; model_dir = ''; record_file = ''; ckpt_file = ''
  i = 1
  do while (i <= command_argument_count())
    call get_command_argument(i, arg)
    select case (trim(arg))
    case ('--histories'); i = i + 1; call get_command_argument(i, hist_file)
    case ('--model'); i = i + 1; call get_command_argument(i, model_dir)
    case ('--record'); i = i + 1; call get_command_argument(i, record_file)
    case ('--checkpoint'); i = i + 1; call get_command_argument(i, ckpt_file)
    case default
      write (error_unit, '(a)') 'usage: closure_tracers [--histories FILE] [--model DIR] '// &
        '[--record FILE] [--checkpoint FILE]'
      error stop 2
    end select
    i = i + 1
  end do

  if (hist_file /= '') then
    call read_histories(trim(hist_file), n, n_steps, hist, dts)
  else
    call shock_histories(n, n_steps, hist, dts)
  end if
  allocate (ids(n), area(n), temp(n), rate(n), unc(n), status(n))
  allocate (burned(n), source=0.0_c_double)
  ids = [(1000_c_int64_t + i, i = 1, n)]

  if (model_dir /= '') then
    call c%open(trim(model_dir), ierr)
  else
    call c%open(ierr=ierr)
  end if
  if (ierr /= CLOSURE_OK) then
    write (error_unit, '(a)') 'closure_open failed: '//c%last_error()
    error stop 1
  end if

  recording = record_file /= ''
  if (recording) then
    open (newunit=rec, file=trim(record_file), access='stream', form='unformatted', &
          status='replace', action='write')
    write (rec) int(n, c_int64_t), int(n_steps, c_int64_t)
  end if

  write (output_unit, '(a6, a10, a9, a13, a13, a12)') 'step', 't (ns)', 'shocked', &
    'mean area', 'max rate', 'burned'
  do k = 1, n_steps
    ! the closure call of this step: every tracer, one dt (no ierr: a failure stops here)
    call c%query(ids, hist(:, k), dts(k), hotspot_area_fraction=area, &
                 hotspot_temperature=temp, reaction_rate=rate, uncertainty=unc, status=status)
    burned = min(1.0_c_double, burned + rate*dts(k))
    if (recording) write (rec) dts(k), hist(:, k), area, temp, rate, unc, status
    if (mod(k, 20) == 0 .or. k == n_steps) &
      write (output_unit, '(i6, f10.3, i9, es13.4, es13.4, es12.3)') k, sum(dts(1:k))*1e9, &
        count(status /= CLOSURE_STATUS_NOT_SHOCKED), sum(area)/n, maxval(rate), sum(burned)/n
    if (ckpt_file /= '' .and. k == n_steps/2) then
      ! checkpoint/restart of the closure state: save, start over from the file
      call c%save_state(trim(ckpt_file))
      call c%close()
      if (model_dir /= '') then
        call c%open(trim(model_dir))
      else
        call c%open()
      end if
      call c%load_state(trim(ckpt_file))
    end if
  end do
  if (recording) close (rec)
  write (output_unit, '(a, i0, a, i0, a)') 'closure state: ', c%n_cells(), ' of ', n, &
    ' tracers shocked'
  call c%close()

contains

  ! a shock reaching tracer j at step 10 + 4 j, peak from 14 GPa down to 4 GPa along the row
  subroutine shock_histories(n, n_steps, p, dt)
    integer, intent(in) :: n, n_steps
    real(c_double), allocatable, intent(out) :: p(:, :), dt(:)
    integer :: j, k, arrive
    real(c_double) :: peak, s
    allocate (p(n, n_steps), dt(n_steps))
    dt = 2.0e-11_c_double                     ! 20 ps: 240 steps = 4.8 ns, about the horizon
    do j = 1, n
      peak = 14.0e9_c_double - 10.0e9_c_double*real(j - 1, c_double)/real(max(n - 1, 1), c_double)
      arrive = 10 + 4*(j - 1)*n_steps/(5*n)
      do k = 1, n_steps
        if (k < arrive) then
          p(j, k) = 1.0e5_c_double           ! ambient
        else if (k < arrive + 3) then
          p(j, k) = peak*real(k - arrive + 1, c_double)/3.0_c_double
        else
          s = real(k - arrive - 3, c_double)*dt(k)
          p(j, k) = peak*(0.6_c_double + 0.4_c_double*exp(-s/1.5e-9_c_double))
        end if
      end do
    end do
  end subroutine shock_histories

  subroutine read_histories(path, n, n_steps, p, dt)
    character(len=*), intent(in) :: path
    integer, intent(out) :: n, n_steps
    real(c_double), allocatable, intent(out) :: p(:, :), dt(:)
    integer :: u, k
    open (newunit=u, file=path, status='old', action='read')
    read (u, *) n, n_steps
    allocate (p(n, n_steps), dt(n_steps))
    do k = 1, n_steps
      read (u, *) dt(k), p(:, k)
    end do
    close (u)
  end subroutine read_histories

end program closure_tracers
